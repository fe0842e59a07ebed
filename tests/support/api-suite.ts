/**
 * The stack most API test files run: an isolated namespace and database,
 * every projector, the API on a free port, a contract-checked client, and
 * signed-in users of any roles without argon2 or login limits. Call it at the
 * top of a describe(): it registers its own beforeAll/afterAll.
 */
import { afterAll, beforeAll, expect } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import type { Role } from '../../producers/identity/roles.js';
import { client, type Answer } from './http.js';
import { isolated, type Isolated } from './isolated.js';
import { testUsers, type TestUsers } from './users.js';

const META = { source: 'relaygrid/test', actor: 'operator:test' };

export interface ApiSuite {
  env: Isolated;
  api: RunningApi;
  call: ReturnType<typeof client>;
  /** A registered user holding `roles`, with an access token. */
  signedIn(roles?: Role[]): Promise<{ id: string; token: string }>;
}

/** `env`: configuration beside the sandbox's (RG_WEBHOOK_ALLOW_PRIVATE=1, say). */
export function apiSuite(opts: { env?: Record<string, string> } = {}): ApiSuite {
  let projectors: RunningProjectors | undefined;
  let users: TestUsers;
  let n = 0;
  const suite = {} as ApiSuite;
  beforeAll(async () => {
    suite.env = await isolated(opts.env ? { env: opts.env } : {});
    projectors = startProjectors(suite.env.rt);
    suite.api = await startApi(suite.env.rt, { host: '127.0.0.1', readTimeoutMs: 5000 });
    suite.call = client(suite.api.url);
    users = testUsers(suite.env.rt);
  });
  afterAll(async () => {
    await suite.api?.close();
    await projectors?.close();
    await suite.env?.cleanup();
  });
  suite.signedIn = async (roles: Role[] = ['client']) => {
    const { userId } = await users.register(suite.api.identity.deps.handler, { email: `s${++n}-${uuidv7()}@example.org` }, META);
    return { id: userId, token: suite.api.identity.deps.tokens.issue(userId, uuidv7(), roles) };
  };
  return suite;
}

/** The answer, once its status is the one expected (the body is in the failure message). */
export function expectStatus<T>(res: Answer<T>, status: number): Answer<T> {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  return res;
}
