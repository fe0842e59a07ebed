/** `relaygrid users …` as an operator runs it: real process, real NATS/Postgres/Redis, one-line errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentity } from '../../infra/roles/api.js';
import type { Identity } from '../../producers/identity/identity.js';
import { runCli } from '../support/cli.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { startProjectors } from '../../infra/roles/projectors.js';
import { readLog } from '../support/log.js';


describe('relaygrid users', () => {
  let env: Isolated;
  let identity: Identity;

  beforeAll(async () => {
    env = await isolated();
    identity = openIdentity(env.rt);
    await identity.start();
  });
  afterAll(async () => {
    await identity?.stop();
    await env?.cleanup();
  });

  const cli = (args: string[], extraEnv: Record<string, string | undefined> = {}) => runCli(env.config, ['users', ...args], extraEnv);

  it('create-admin prints a password once; it logs in with the admin role; the event names the operator', async () => {
    const created = await cli(['create-admin', '--email', 'root@example.org']);
    expect(created.code, created.stderr).toBe(0);
    const password = /password \(shown once\): (\S+)/.exec(created.stdout)?.[1];
    const userId = /created admin (\S+)/.exec(created.stdout)?.[1];
    expect(password).toBeTruthy();
    const session = await identity.auth.login({ email: 'root@example.org', password: password! }, { ip: '127.0.0.1', device: 'test' });
    expect(identity.auth.authenticateToken(session.accessToken).roles).toContain('admin');
    const [registered] = await readLog(env.rt, env.rt.names.aggregate('identity', 'user', userId!));
    expect(registered?.meta.actor).toMatch(/^operator:/);
  });

  it('grant a role and suspend, naming the user by email', async () => {
    const user = await identity.accounts.register({ email: 'someone@example.org', password: 'long enough password' });
    expect((await cli(['grant', 'someone@example.org', 'analyst'])).code).toBe(0);
    expect((await cli(['suspend', 'someone@example.org', '--reason', 'chargeback'])).code).toBe(0);
    const state = await identity.deps.loadUser(user.userId);
    expect(state.roles).toContain('analyst');
    expect(state.status).toBe('suspended');
  });

  it('list prints a header naming the columns, then one row per user', async () => {
    // `list` reads the users read model: its projector must have caught up.
    const projectors = startProjectors(env.rt, ['users']);
    const listed = await eventually(async () => {
      const result = await cli(['list', '--q', 'someone@']);
      return result.stdout.includes('suspended') && result;
    }, 20_000, 200).finally(() => projectors.close());
    expect(listed.code, listed.stderr).toBe(0);
    const [header, ...rows] = listed.stdout.trimEnd().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual(['ID', 'STATUS', 'ROLES', 'EMAIL']);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.split(/\s{2,}/).slice(1)).toEqual(['suspended', 'client,analyst', 'someone@example.org']);
  });

  it.each([
    [['suspend', 'someone@example.org'], /--reason/],
    [['grant', 'someone@example.org', 'root'], /<role>: one of admin/],
    [['grant', 'nobody@example.org', 'admin'], /user_not_found/],
    [['create-admin'], /--email/],
    [['frobnicate'], /unknown users command "frobnicate"/],
  ])('bad arguments %j end with one line and exit 2', async (args, message) => {
    const result = await cli(args);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it('without RG_MASTER_KEY it refuses, naming the variable', async () => {
    const result = await cli(['list'], { RG_MASTER_KEY: '' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/RG_MASTER_KEY/);
  });
});
