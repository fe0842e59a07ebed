/**
 * "Every role, run alone, serves /health, /ready and /metrics on a port of its
 * own; `promtool check metrics` is clean on every port; every projector has a
 * lag series from the moment it starts."
 *
 * Each role runs as the operator runs it (`relaygrid <role>`, a child process),
 * all five at once against one migrated sandbox. The `users` projector's lock
 * is held by the test, so that projector is a standby that never writes a
 * batch: the projector a lag alert must still see.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { freePort } from '../../infra/stack/ports.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { PROJECTIONS } from '../../projectors/catalogue.js';
import { LeaderLock } from '../../projectors/runtime/leader-lock.js';
import { Projector } from '../../projectors/runtime/projector.js';
import { projectorDeps } from '../../infra/roles/projectors.js';
import { generateKeyPair } from '../../replay/audit/note.js';
import { CLI, runCli } from '../support/cli.js';
import { RoleProcesses } from '../support/role-processes.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { testUsers } from '../support/users.js';

const PROMTOOL = process.env['PROMTOOL_BIN'] ?? '/usr/bin/promtool';
const META = { source: 'relaygrid/test' };

/** What `promtool check metrics` says about a scrape: its exit code and every line it printed. */
function promtool(scrape: string): { status: number | null; lines: string[] } {
  const result = spawnSync(PROMTOOL, ['check', 'metrics'], { input: scrape, encoding: 'utf8' });
  return { status: result.status, lines: `${result.stdout}${result.stderr}`.split('\n').filter((l) => l.trim() !== '') };
}

/** The value of one series in a scrape, undefined when it has none. */
function series(scrape: string, name: string, label: string): number | undefined {
  const line = scrape.split('\n').find((l) => l.startsWith(`${name}{${label}}`));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('each role run alone serves /health, /ready and /metrics', () => {
  let env: Isolated;
  let lock: LeaderLock;
  let checkpointDir: string;
  const lagged: { userId: string; seq: number }[] = [];

  let processes: RoleProcesses;
  const role = (command: string) => processes.role(command);

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` before the integration tests`);
    if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: apt-get install prometheus (or set PROMTOOL_BIN)`);
    env = await isolated();
    const { rt } = env;
    // Held here, so the `users` projector of the projector process can only stand by.
    lock = new LeaderLock(env.config.databaseUrl, 'users');
    expect(await lock.tryAcquire()).toBe(true);
    const store = new EventStore(rt.nats, rt.names, rt.registry);
    const users = testUsers(rt);
    for (let i = 0; i < 3; i++) {
      const userId = uuidv7();
      const { seq } = await store.append(rt.names.aggregate('identity', 'user', userId), [await users.registered(userId, `lag-${i}@example.test`)], { expectedSeq: 0, meta: META });
      lagged.push({ userId, seq });
    }
    checkpointDir = mkdtempSync(join(tmpdir(), 'rg-ops-audit-'));
    const audit = { RG_AUDIT_SIGNING_KEY: generateKeyPair(`relaygrid.test/${env.namespace}`).signer, RG_AUDIT_CHECKPOINT_DIR: checkpointDir };
    const [api, gateway, projector, fleet, auditPort] = await Promise.all(Array.from({ length: 5 }, () => freePort()));
    processes = new RoleProcesses(env.config);
    processes.spawn('api', 'RG_API_PORT', api!);
    processes.spawn('gateway', 'RG_GATEWAY_PORT', gateway!);
    processes.spawn('projector', 'RG_PROJECTOR_PORT', projector!);
    processes.spawn('fleet-worker', 'RG_FLEET_WORKER_PORT', fleet!);
    processes.spawn('audit-worker', 'RG_AUDIT_WORKER_PORT', auditPort!, audit);
    await processes.ready();
  }, 60_000);

  afterAll(async () => {
    await processes?.stop();
    await lock?.release();
    if (checkpointDir) rmSync(checkpointDir, { recursive: true, force: true });
    await env?.cleanup();
  });

  it('the projector reports a lag for every projector before any batch, the standby one included', async () => {
    const scrape = await (await fetch(`${role('projector').url}/metrics`)).text();
    for (const name of PROJECTIONS.keys()) expect(series(scrape, 'relaygrid_projector_lag_events', `projector="${name}"`), name).toBeDefined();
    // The users projector has written no batch (its checkpoint is 0), yet its lag shows the three events behind it.
    expect(series(scrape, 'relaygrid_projector_lag_events', 'projector="users"')).toBe(lagged.length);
    expect(series(scrape, 'relaygrid_projector_active', 'projector="users"')).toBe(0);
    const checkpoint = await env.rt.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', 'users').executeTakeFirst();
    expect(checkpoint?.seq ?? 0).toBe(0);
    const ready = (await (await fetch(`${role('projector').url}/ready`)).json()) as { checks: Record<string, { ok: boolean; detail?: string }> };
    expect(ready.checks['projector:users']).toEqual({ ok: true, detail: 'standby: another instance holds the lock' });
    expect(Object.keys(ready.checks)).not.toContain('redis');
  });

  it('/health and /ready answer on every port, with the checks of what each role needs', async () => {
    const expected: Record<string, string[]> = {
      api: ['nats', 'postgres', 'redis'],
      gateway: ['nats', 'postgres', 'redis'],
      projector: ['nats', 'postgres', ...[...PROJECTIONS.keys()].map((p) => `projector:${p}`)],
      'fleet-worker': ['nats', 'postgres', 'fleet-worker'],
      'audit-worker': ['nats', 'postgres', 'audit-worker'],
    };
    for (const r of processes.roles) {
      const health = await fetch(`${r.url}/health`);
      expect(health.status, r.command).toBe(200);
      expect(await health.json(), r.command).toMatchObject({ status: 'ok' });
      const ready = await fetch(`${r.url}/ready`);
      expect(ready.status, r.command).toBe(200);
      const report = (await ready.json()) as { ready: boolean; checks: Record<string, { ok: boolean }> };
      expect(report.ready, r.command).toBe(true);
      expect(Object.keys(report.checks).sort(), r.command).toEqual([...(expected[r.command] ?? [])].sort());
    }
  });

  it('promtool check metrics is clean on every port after traffic', async () => {
    // A little of what each role does, so labelled series and histograms appear.
    await fetch(`${role('api').url}/v1/auth/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ email: 'ops@example.org', password: 'a long enough password' }),
    });
    expect((await fetch(`${role('api').url}/no/such/route`)).status).toBe(404);
    expect((await fetch(`${role('gateway').url}/no/such/route`)).status).toBe(404);
    expect((await fetch(`${role('projector').url}/no/such/route`)).status).toBe(404);
    const nodeId = 'ops-test-node';
    await env.rt.nats.nc.request(`${env.rt.names.prefix}.fleet.agent.${nodeId}.desired`, '{}', { timeout: 5000 });
    await eventually(async () => (await (await fetch(`${role('api').url}/metrics`)).text()).includes('relaygrid_appends_total{outcome="appended"}'));
    await eventually(async () => (await (await fetch(`${role('audit-worker').url}/metrics`)).text()).match(/relaygrid_audit_tree_size [1-9]/));

    for (const r of processes.roles) {
      const scrape = await (await fetch(`${r.url}/metrics`)).text();
      expect(scrape, r.command).toContain('relaygrid_process_cpu_seconds_total');
      expect(promtool(scrape), r.command).toEqual({ status: 0, lines: [] });
    }
    expect(await (await fetch(`${role('fleet-worker').url}/metrics`)).text()).toMatch(/relaygrid_fleet_agent_requests_total\{op="desired",outcome="refused"\} 1/);
  });

  it('a port in use stops a second projector at start with one line naming the variable', async () => {
    const { port } = role('projector');
    const result = await runCli(env.config, ['projector', 'users'], { RG_PROJECTOR_PORT: String(port) });
    expect(result.code).toBe(2);
    expect(result.stderr.trim()).toBe(`relaygrid: RG_PROJECTOR_PORT: port ${port} is in use: give each projector on this host a port of its own (0 picks a free one)`);
  });

  it('a standby measures its lag again as events arrive, without ever writing a batch', async () => {
    const { rt } = env;
    const projection = PROJECTIONS.get('users');
    if (!projection) throw new Error('no users projection');
    const standby = new Projector({ ...projectorDeps(rt), projection, lagPollMs: 100 });
    const running = standby.run();
    try {
      // The three events of the start and the API's registration since.
      await eventually(() => standby.status().state === 'standby' && standby.status().lag === lagged.length + 1);
      const store = new EventStore(rt.nats, rt.names, rt.registry);
      const users = testUsers(rt);
      const userId = uuidv7();
      await store.append(rt.names.aggregate('identity', 'user', userId), [await users.registered(userId, 'lag-late@example.test')], { expectedSeq: 0, meta: META });
      await eventually(() => standby.status().lag === lagged.length + 2, 5000);
      expect(standby.status().state).toBe('standby');
    } finally {
      await standby.close();
      await running;
    }
  });
});
