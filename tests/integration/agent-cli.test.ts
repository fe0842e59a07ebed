/**
 * `relaygrid agent` as an operator runs it on a node: a real process that
 * redeems its enrollment token at the API, keeps its credentials, drives a
 * real v2ray core, heartbeats and applies a rollout; and the one-line errors
 * that name the argument at fault.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApi } from '../../infra/roles/api.js';
import type { RunningFleetWorker } from '../../infra/roles/fleet.js';
import { freePort, LOOPBACK } from '../../infra/stack/ports.js';
import { CLI, runCli, sandboxEnv } from '../support/cli.js';
import { fleetStack, type FleetStackWithApi } from '../support/fleet-stack.js';
import { eventually, type Isolated } from '../support/isolated.js';

const V2RAY = process.env['V2RAY_BIN'] ?? '/usr/bin/v2ray';
const operator = { actor: 'operator:test' };

describe('relaygrid agent', () => {
  let stack: FleetStackWithApi;
  let env: Isolated;
  let worker: RunningFleetWorker;
  let api: RunningApi;
  let dir: string;
  let agent: ChildProcess | undefined;

  beforeAll(async () => {
    stack = await fleetStack({ api: true });
    ({ env, worker, api, dir } = stack);
  }, 30_000);

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((resolve) => agent!.once('exit', resolve));
    }
    await stack?.close();
  });

  it('names the argument at fault', async () => {
    const fails = async (args: string[], message: string) => {
      const result = await runCli(env.config, ['agent', ...args]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toContain(message);
    };
    await fails(['--state-dir', dir], '--node: required');
    await fails(['--node', 'x', '--state-dir', dir, '--core', 'sing-box'], '--core: must be v2ray or xray');
    await fails(['--node', 'x', '--state-dir', dir, '--enroll', 'x.abc'], '--api: required with --enroll');
    const refused = await runCli(env.config, ['agent', '--node', 'x', '--state-dir', join(dir, 'x'), '--enroll', 'x.forged', '--api', api.url]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--enroll: the API refused the token \(401\)/);
  });

  it('enrolls with a one-time token, keeps its credentials, and serves what the rollout brings', async () => {
    const { nodes, profiles, rollouts } = worker.fleet;
    await nodes.register({ nodeId: 'cli-node', address: LOOPBACK }, 'api', operator);
    await profiles.create({ profileId: 'main', kind: 'vless', port: await freePort() }, operator);
    const { token } = await nodes.issueEnrollmentToken('cli-node', operator);
    const stateDir = join(dir, 'cli-node');
    const output: string[] = [];
    agent = spawn(process.execPath, [CLI, 'agent', '--node', 'cli-node', '--state-dir', stateDir, '--enroll', token, '--api', api.url, '--core', 'v2ray', '--core-binary', V2RAY, '--api-port', String(await freePort()), '--sync-interval', '1'], {
      env: sandboxEnv(env.config, { LOG_LEVEL: 'warn' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    agent.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
    agent.stderr?.on('data', (d: Buffer) => output.push(d.toString()));

    const credentials = await eventually(() => readFile(join(stateDir, 'credentials.json'), 'utf8').then((t) => JSON.parse(t) as { user: string; inboxPrefix: string }), 15_000);
    expect(credentials).toMatchObject({ user: 'node-cli-node', inboxPrefix: env.rt.names.fleetInbox('cli-node') });
    expect((await stat(join(stateDir, 'credentials.json'))).mode & 0o777).toBe(0o600);
    await eventually(async () => (await worker.fleet.views.node('cli-node')).health === 'healthy', 15_000);
    expect((await worker.fleet.views.node('cli-node')).enrolled).toBe(true);

    const { rolloutId } = await rollouts.plan({ reason: 'agent cli test' }, operator);
    await eventually(async () => (await worker.fleet.views.rollout(rolloutId)).status === 'completed', 20_000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\nagent output:\n${output.join('')}`);
    });
    const node = await worker.fleet.views.node('cli-node');
    expect(node.appliedTemplate).toBe(node.desiredTemplate);
    // The operator's views: `fleet nodes` has a header, and names the template the way `rollout status` does.
    const listed = await runCli(env.config, ['fleet', 'nodes']);
    const [header, ...rows] = listed.stdout.trimEnd().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual(['NODE', 'ADDRESS', 'HEALTH', 'STATE', 'TEMPLATE', 'VERSION', 'LAST ERROR']);
    const row = rows.map((r) => r.split(/\s{2,}/)).find((cells) => cells[0] === 'cli-node');
    const status = JSON.parse((await runCli(env.config, ['fleet', 'rollout', 'status', rolloutId])).stdout) as { targets: { nodeId: string; template: string }[] };
    expect(row?.slice(1, 5)).toEqual([LOOPBACK, 'healthy', 'active', status.targets.find((t) => t.nodeId === 'cli-node')?.template]);
    expect(row?.[5]).toBe(node.appliedVersion);
    const config = JSON.parse(await readFile(join(stateDir, 'config.json'), 'utf8')) as { inbounds: { tag: string }[] };
    expect(config.inbounds.map((i) => i.tag).sort()).toEqual(['api', 'main']);

    // The token was spent: a second enrollment with it is refused.
    expect((await fetch(`${api.url}/v1/fleet/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) })).status).toBe(401);

    agent.kill('SIGTERM');
    expect(await new Promise((resolve) => agent!.once('exit', (code) => resolve(code)))).toBe(0);
    // The state holds every user's credentials: readable by the agent only.
    expect((await stat(join(stateDir, 'applied.json'))).mode & 0o777).toBe(0o600);

    // Started again with no NATS to talk to, it serves its last good configuration meanwhile.
    agent = spawn(process.execPath, [CLI, 'agent', '--node', 'cli-node', '--state-dir', stateDir, '--core', 'v2ray', '--core-binary', V2RAY, '--api-port', String(await freePort())], {
      env: sandboxEnv(env.config, { LOG_LEVEL: 'warn', NATS_URL: `nats://${LOOPBACK}:${await freePort()}` }),
      stdio: 'ignore',
    });
    const coreOf = () => new Promise<boolean>((resolve) => execFile('pgrep', ['-f', join(stateDir, 'config.json')], (err) => resolve(!err)));
    await eventually(coreOf, 15_000);
    agent.kill('SIGTERM');
    expect(await new Promise((resolve) => agent!.once('exit', (code) => resolve(code)))).toBe(0);
    expect(await coreOf()).toBe(false);
  }, 60_000);
});
