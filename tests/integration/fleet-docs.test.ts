/**
 * The fleet docs' own examples against the real API: every `sh tested` block
 * of docs/fleet.md (a profile of each kind, and a refusal), and the "adding a
 * node from zero" walk of docs/operations.md in its order — node, profile,
 * enrollment token, the agent CLI with the real V2Ray core, rollout, the
 * node's state, a user's subscription. Each command is read from the Markdown
 * (tests/support/doc-examples.ts), and its answer must match what the doc
 * shows under it, so a doc example that stops working fails here.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { freePort } from '../../infra/stack/ports.js';
import { CLI, runCli, sandboxEnv } from '../support/cli.js';
import { blockCommands, curlRequest, DOCS_DIR, mismatch, substitute, testedBlocks, type DocCommand } from '../support/doc-examples.js';
import { fleetStack, type FleetStackWithApi } from '../support/fleet-stack.js';
import { eventually } from '../support/isolated.js';
import { testUsers } from '../support/users.js';

const V2RAY = process.env['V2RAY_BIN'] ?? '/usr/bin/v2ray';
const META = { source: 'relaygrid/test', actor: 'operator:test' };

interface Ran {
  status: number;
  body: unknown;
}

/** A stack with the API, and an operator's token for `$TOKEN`. */
async function docStack(): Promise<{ stack: FleetStackWithApi; vars: Record<string, string> }> {
  const stack = await fleetStack({ api: true });
  const { userId } = await testUsers(stack.env.rt).register(stack.api.identity.deps.handler, { email: `op-${uuidv7()}@example.org` }, META);
  const token = stack.api.identity.deps.tokens.issue(userId, uuidv7(), ['operator']);
  return { stack, vars: { API: stack.api.url, TOKEN: token } };
}

async function send(command: DocCommand, vars: Record<string, string>, where: string): Promise<Ran> {
  const request = curlRequest(command, vars, where);
  const res = await fetch(request.url, { method: request.method, headers: request.headers, ...(request.body !== undefined ? { body: request.body } : {}) });
  // The suite's fetch has already held the answer to the API's OpenAPI document (tests/support/contract-fetch.ts).
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

/** Where the answer differs from what the doc shows under the command, or null. */
function differs(command: DocCommand, ran: Ran): string | null {
  if (!command.answer) return ran.status < 400 ? null : `answered ${ran.status}: ${JSON.stringify(ran.body)}`;
  if (ran.status !== command.answer.status) return `answered ${ran.status}, the doc says ${command.answer.status}: ${JSON.stringify(ran.body)}`;
  const wrong = command.answer.body === undefined ? null : mismatch(command.answer.body, ran.body);
  return wrong && `${wrong}\n  answer: ${JSON.stringify(ran.body)}`;
}

/**
 * Runs a curl example and checks its answer. A GET is asked again until it
 * matches (the doc shows the state it settles in: a node applied, a user's
 * credentials projected); anything else is sent once.
 */
async function runCurl(command: DocCommand, vars: Record<string, string>, where: string): Promise<Ran> {
  const once = async () => {
    const ran = await send(command, vars, where);
    const wrong = differs(command, ran);
    if (wrong) throw new Error(`${where}: ${wrong}`);
    return ran;
  };
  if (curlRequest(command, vars, where).method !== 'GET') return once();
  return eventually(once, 30_000, 250);
}

describe('docs/fleet.md examples', () => {
  let stack: FleetStackWithApi;
  let vars: Record<string, string>;
  beforeAll(async () => ({ stack, vars } = await docStack()));
  afterAll(async () => stack?.close());

  const blocks = testedBlocks('fleet.md');
  it('has tested examples', () => expect(blocks.length).toBeGreaterThanOrEqual(6));

  for (const block of blocks) {
    it(`fleet.md:${block.line}`, async () => {
      for (const command of blockCommands(block, 'fleet.md')) {
        expect(command.program, `fleet.md:${command.line}`).toBe('curl');
        await runCurl(command, vars, `fleet.md:${command.line}`);
      }
    });
  }
});

describe('docs/operations.md: adding a node from zero', () => {
  let stack: FleetStackWithApi;
  let vars: Record<string, string>;
  let agent: ChildProcess | undefined;
  const agentOutput: string[] = [];

  beforeAll(async () => {
    ({ stack, vars } = await docStack());
    // "a user registered as in the README": through the accounts service, so they have proxy credentials.
    const { userId } = await stack.api.identity.accounts.register({ email: `alice-${uuidv7()}@example.org`, password: 'correct horse battery' });
    vars['USER_TOKEN'] = stack.api.identity.deps.tokens.issue(userId, uuidv7(), ['client']);
    vars['USER_ID'] = userId;
  });
  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      const exited = new Promise((resolve) => agent!.once('exit', resolve));
      agent.kill('SIGTERM');
      await exited;
    }
    await stack?.close();
  });

  /**
   * The doc's agent command, run in the background from a scratch directory.
   * The test adds only what a shared test machine needs: a free port for the
   * core's local API, the V2Ray binary wherever it is, and a 1 s sync so the
   * rollout's push is not waited for when the agent connects after it.
   */
  async function startAgent(command: DocCommand, where: string): Promise<void> {
    const args = command.words.map((w) => substitute(w, vars, where));
    args.push('--core-binary', V2RAY, '--api-port', String(await freePort()), '--sync-interval', '1');
    agent = spawn(process.execPath, [CLI, ...args], { cwd: stack.dir, env: sandboxEnv(stack.env.config, { LOG_LEVEL: 'warn' }), stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout?.on('data', (d: Buffer) => agentOutput.push(d.toString()));
    agent.stderr?.on('data', (d: Buffer) => agentOutput.push(d.toString()));
  }

  it('walks node, profile, enrollment token, agent, rollout and subscription as written', async () => {
    const text = readFileSync(`${DOCS_DIR}operations.md`, 'utf8');
    const section = text.slice(text.indexOf('## Adding a node from zero'));
    const sectionStart = text.slice(0, text.indexOf('## Adding a node from zero')).split('\n').length;
    const blocks = testedBlocks('operations.md').filter((b) => b.line >= sectionStart);
    expect(blocks.length).toBeGreaterThanOrEqual(6);
    let subscriptionUrl: string | undefined;
    try {
      for (const block of blocks) {
        for (const command of blockCommands(block, 'operations.md')) {
          const where = `operations.md:${command.line}`;
          if (command.program === 'relaygrid') {
            expect(command.words[0], `${where}: the only CLI command the walk tests is the agent`).toBe('agent');
            await startAgent(command, where);
            continue;
          }
          const ran = await runCurl(command, vars, where);
          const body = ran.body as { token?: string; url?: string };
          // The doc tells the reader to keep these: `export ENROLL_TOKEN=…`, "$API followed by that url".
          if (curlRequest(command, vars, where).url.endsWith('/enrollment-token')) vars['ENROLL_TOKEN'] = body.token!;
          if (curlRequest(command, vars, where).url.endsWith('/v1/subscription')) subscriptionUrl = body.url;
        }
      }
    } catch (err) {
      throw new Error(`${(err as Error).message}\nagent output:\n${agentOutput.join('')}`);
    }

    // The link the doc shows is among what the subscription URL gives.
    const shown = /`(vless:\/\/[^`]+)`/.exec(section)?.[1];
    expect(shown, 'operations.md shows the link a user gets').toBeDefined();
    expect(subscriptionUrl).toBeDefined();
    const links = Buffer.from(await (await fetch(`${vars['API']}${subscriptionUrl}`)).text(), 'base64').toString('utf8').split('\n');
    expect(links.filter((link) => mismatch(shown, link) === null), links.join('\n')).toHaveLength(1);
  }, 90_000);
});

describe('the enrollment hint of `relaygrid fleet enroll-token`', () => {
  let stack: FleetStackWithApi;
  let vars: Record<string, string>;
  beforeAll(async () => ({ stack, vars } = await docStack()));
  afterAll(async () => stack?.close());

  it('is the whole first start of the agent, --state-dir included', async () => {
    const res = await fetch(`${vars['API']}/v1/fleet/nodes`, { method: 'POST', headers: { authorization: `Bearer ${vars['TOKEN']}`, 'content-type': 'application/json' }, body: JSON.stringify({ nodeId: 'hint-1', address: '127.0.0.1' }) });
    expect(res.status).toBe(201);
    const result = await runCli(stack.env.config, ['fleet', 'enroll-token', 'hint-1']);
    expect(result.code, result.stderr).toBe(0);
    const [token, hint] = result.stdout.trim().split('\n');
    expect(token).toMatch(/^hint-1\./);
    expect(hint).toContain(`npx relaygrid agent --node hint-1 --state-dir /var/lib/relaygrid-agent --enroll ${token} --api <API URL>`);
  });
});
