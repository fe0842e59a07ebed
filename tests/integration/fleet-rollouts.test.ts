/**
 * Rollouts, health and operator commands with real agents whose core only
 * acknowledges (AckCoreDriver), against real NATS and Postgres:
 * - the `relaygrid-ops` micro service answers discovery ($SRV.PING/INFO, what
 *   `nats micro ls` asks) and plans, pauses, resumes, aborts and rolls back;
 * - waves: the canary first; a paused rollout starts no wave; resume finishes it;
 * - a configuration the core rejects halts the rollout after the canary, and a
 *   roll-back tells the canary its previous template again;
 * - health changes from heartbeats are recorded once each;
 * - the nodes.yaml discovery file, imported twice, creates nodes once.
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../infra/logger.js';
import { runFleetCli } from '../../infra/roles/fleet-cli.js';
import { startFleetWorker, type RunningFleetWorker } from '../../infra/roles/fleet.js';
import { NodeAgent } from '../../workers/agent/agent.js';
import { AckCoreDriver } from '../../workers/agent/core/ack-driver.js';
import { fleetStack, type FleetStack } from '../support/fleet-stack.js';
import { eventually, type Isolated } from '../support/isolated.js';

const log = createLogger(process.env['LOG_LEVEL'] ?? 'silent', { test: 'fleet-rollouts' });
const operator = { actor: 'operator:test' };
const NODES = ['r-1', 'r-2', 'r-3', 'r-4', 'r-5'];

describe('rollouts, health and operator commands', () => {
  let stack: FleetStack;
  let env: Isolated;
  let worker: RunningFleetWorker;
  let nc: NatsConnection;
  let dir: string;
  const agents = new Map<string, { agent: NodeAgent; driver: AckCoreDriver }>();

  const node = (id: string) => env.rt.db.selectFrom('fleet_nodes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const rollout = (id: string) => env.rt.db.selectFrom('fleet_rollouts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const metric = (name: string) => env.rt.metrics.registry.getSingleMetricAsString(name);
  const ops = async <T>(endpoint: string, body: unknown = {}): Promise<{ status: string | undefined; body: T }> => {
    const msg = await nc.request(`${env.rt.names.opsGroup}.${endpoint}`, JSON.stringify(body), { timeout: 10_000 });
    return { status: msg.headers?.get('Nats-Service-Error-Code') || undefined, body: JSON.parse(msg.string()) as T };
  };

  async function startAgent(nodeId: string): Promise<void> {
    const driver = new AckCoreDriver();
    // The core refuses any configuration that carries the broken profile.
    driver.rejectWhen = (path) => (readFileSync(path, 'utf8').includes('"broken"') ? 'failed to build TLS config: open /nowhere.pem: no such file or directory' : null);
    const agent = new NodeAgent({ nc, names: env.rt.names, nodeId, stateDir: join(dir, nodeId), driver, apiPort: 1, log, syncIntervalMs: 60_000, heartbeatIntervalMs: 200, usageIntervalMs: 60_000 });
    await agent.start();
    agents.set(nodeId, { agent, driver });
  }

  /** Holds every agent in the middle of applying (its core's start) until released: an operator's command lands first. */
  function holdAgents(): () => void {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    for (const { driver } of agents.values()) driver.startGate = gate;
    return () => {
      for (const { driver } of agents.values()) driver.startGate = undefined;
      release();
    };
  }

  beforeAll(async () => {
    stack = await fleetStack({ downAfterMs: 1_000 });
    ({ env, worker, dir } = stack);
    nc = await connect({ servers: env.config.natsUrl });
    for (const nodeId of NODES) await worker.fleet.nodes.register({ nodeId, address: '192.0.2.1', labels: ['edge'] }, 'api', operator);
    await worker.fleet.profiles.create({ profileId: 'main', kind: 'vless', port: 8443, labels: ['edge'] }, operator);
    for (const nodeId of NODES) await startAgent(nodeId);
    await eventually(async () => (await env.rt.db.selectFrom('fleet_nodes').select('id').where('health', '=', 'healthy').execute()).length === NODES.length);
  }, 60_000);

  afterAll(async () => {
    for (const { agent } of agents.values()) await agent.stop(true);
    await nc?.close();
    await stack?.close();
  });

  it('reports each node\'s health as one series, for the NodeDown alert', async () => {
    await eventually(async () => (await metric('relaygrid_fleet_node_health')).includes('node="r-1",health="healthy"} 1'));
    const text = await metric('relaygrid_fleet_node_health');
    for (const id of NODES) expect(text).toContain(`relaygrid_fleet_node_health{node="${id}",health="healthy"} 1`);
    expect(text).not.toContain('health="down"');
  });

  it('relaygrid-ops answers discovery as `nats micro ls` asks for it', async () => {
    const replies = await nc.requestMany('$SRV.INFO.relaygrid-ops', '', { maxWait: 1_000 });
    const infos: { name: string; metadata?: Record<string, string>; endpoints: { subject: string }[] }[] = [];
    for await (const msg of replies) infos.push(JSON.parse(msg.string()) as (typeof infos)[number]);
    const ours = infos.find((i) => i.metadata?.['namespace'] === env.rt.names.namespace);
    expect(ours?.name).toBe('relaygrid-ops');
    const subjects = ours!.endpoints.map((e) => e.subject);
    for (const op of ['plan', 'pause', 'resume', 'abort', 'rollback', 'status']) expect(subjects).toContain(`${env.rt.names.opsGroup}.rollout.${op}`);
    expect(subjects).toContain(`${env.rt.names.opsGroup}.nodes`);
  });

  it('plans over NATS, canary first; a paused rollout starts no wave until resumed', async () => {
    // Every agent is held while it applies, so the pause lands before the canary reports.
    const release = holdAgents();
    const planned = await ops<{ rolloutId: string; targets: number }>('rollout.plan', { reason: 'first', by: 'alice' });
    expect(planned.status).toBeUndefined();
    expect(planned.body.targets).toBe(NODES.length);
    const { rolloutId } = planned.body;
    expect((await ops('rollout.pause', { rolloutId })).status).toBeUndefined();
    release();
    await eventually(async () => (await env.rt.db.selectFrom('fleet_rollout_nodes').select('node_id').where('rollout_id', '=', rolloutId).execute()).length === 1);
    await new Promise((r) => setTimeout(r, 500));
    const paused = await rollout(rolloutId);
    expect(paused).toMatchObject({ status: 'paused', wave: 0, applied: 1, planned_by: 'operator:alice' });
    expect((await ops('rollout.resume', { rolloutId })).status).toBeUndefined();
    await eventually(async () => (await rollout(rolloutId)).status === 'completed');
    const status = await ops<{ waves: string[][]; reports: { nodeId: string; outcome: string }[] }>('rollout.status', { rolloutId });
    expect(status.body.waves.map((w) => w.length)).toEqual([1, 1, 3]);
    expect(status.body.reports).toHaveLength(NODES.length);
    expect(status.body.reports.every((r) => r.outcome === 'applied')).toBe(true);
    for (const nodeId of NODES) expect(agents.get(nodeId)!.agent.appliedTemplate).toBe((await node(nodeId)).desired_template);
  });

  it('refuses what it cannot do with the micro service error and a stable code', async () => {
    const missing = await ops<{ code: string }>('rollout.pause', { rolloutId: 'no-such-rollout' });
    expect(missing.status).toBe('404');
    expect(missing.body.code).toBe('rollout_not_found');
    const noId = await ops<{ code: string }>('rollout.pause', {});
    expect(noId.status).toBe('400');
    const nothing = await ops<{ code: string }>('rollout.plan', {});
    expect(nothing.status).toBe('409');
    expect(nothing.body.code).toBe('nothing_to_roll_out');
  });

  it('halts after the canary rejects, keeps the other waves untold, and rolls the canary back', async () => {
    const before = new Map(await Promise.all(NODES.map(async (id) => [id, (await node(id)).desired_template] as const)));
    await worker.fleet.profiles.create({ profileId: 'broken', kind: 'vless', port: 9443, labels: ['edge'] }, operator);
    const { body } = await ops<{ rolloutId: string }>('rollout.plan', { reason: 'broken profile' });
    await eventually(async () => (await rollout(body.rolloutId)).status === 'halted');
    const halted = await rollout(body.rolloutId);
    // What the RolloutHalted alert reads: the count stays until an operator decides.
    await eventually(async () => (await metric('relaygrid_fleet_rollouts')).includes('relaygrid_fleet_rollouts{status="halted"} 1'));
    const canary = halted.waves[0]![0]!;
    expect(halted.status_reason).toContain(`canary ${canary} rejected`);
    expect((await node(canary)).last_error).toContain('no such file or directory');
    expect(agents.get(canary)!.agent.appliedTemplate).toBe(before.get(canary));
    for (const nodeId of NODES.filter((id) => id !== canary)) expect((await node(nodeId)).desired_template).toBe(before.get(nodeId));

    expect((await ops('rollout.rollback', { rolloutId: body.rolloutId })).status).toBeUndefined();
    await eventually(async () => (await node(canary)).desired_template === before.get(canary));
    expect((await rollout(body.rolloutId)).status).toBe('rolled_back');
    await eventually(async () => (await metric('relaygrid_fleet_rollouts')).includes('relaygrid_fleet_rollouts{status="halted"} 0'));
    expect((await ops<{ code: string }>('rollout.resume', { rolloutId: body.rolloutId })).body.code).toBe('invalid_rollout_state');
    await worker.fleet.profiles.remove('broken', operator);
  });

  it('an aborted rollout starts no further wave', async () => {
    await worker.fleet.profiles.update('main', { port: 8444, labels: ['edge'] }, operator);
    const release = holdAgents();
    const { body } = await ops<{ rolloutId: string }>('rollout.plan', { reason: 'port change' });
    expect((await ops('rollout.abort', { rolloutId: body.rolloutId })).status).toBeUndefined();
    release();
    await new Promise((r) => setTimeout(r, 500));
    const aborted = await rollout(body.rolloutId);
    expect(aborted.status).toBe('aborted');
    expect(aborted.wave).toBe(0);
    const told = await env.rt.db.selectFrom('fleet_nodes').select('id').where('desired_rollout', '=', body.rolloutId).execute();
    expect(told.map((r) => r.id)).toEqual([aborted.waves[0]![0]]);
  });

  it('two plans at the same moment: one rollout, the other is refused', async () => {
    await worker.fleet.profiles.update('main', { port: 8445, labels: ['edge'] }, operator);
    // Held agents keep the first rollout running, so the second planner finds it in progress.
    const release = holdAgents();
    const results = await Promise.allSettled([worker.fleet.rollouts.plan({ reason: 'first' }, operator), worker.fleet.rollouts.plan({ reason: 'second' }, operator)]);
    const planned = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r) => r.status === 'rejected');
    expect(planned).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'invalid_rollout_state' });
    await ops('rollout.abort', { rolloutId: (planned[0] as PromiseFulfilledResult<{ rolloutId: string }>).value.rolloutId });
    release();
  });

  it('a core that does not start, not even with the last good configuration: the node is degraded until it does', async () => {
    const { driver } = agents.get('r-2')!;
    driver.startError = 'listen tcp 0.0.0.0:8446: bind: address already in use';
    await worker.fleet.profiles.update('main', { port: 8446, labels: ['edge'] }, operator);
    const { rolloutId } = await worker.fleet.rollouts.plan({ reason: 'port taken on the canary' }, operator);
    await eventually(async () => (await rollout(rolloutId)).status === 'halted', 5_000);
    expect((await node('r-2')).last_error).toContain('address already in use');
    await eventually(async () => (await node('r-2')).health === 'degraded', 5_000);
    driver.startError = undefined;
    await eventually(async () => (await node('r-2')).health === 'healthy', 5_000);
    await ops('rollout.rollback', { rolloutId });
  });

  it('records health changes once each: down without heartbeats, healthy when they return', async () => {
    const nodeId = 'r-5';
    const subject = env.rt.names.aggregate('fleet', 'node', nodeId);
    const healthEvents = async () => (await env.rt.nats.jsm.streams.info(env.rt.names.stream('fleet'), { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
    const { agent } = agents.get(nodeId)!;
    await agent.stop(false);
    await eventually(async () => (await node(nodeId)).health === 'down', 5_000);
    const eventsWhenDown = await healthEvents();
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await healthEvents()).toBe(eventsWhenDown);
    await startAgent(nodeId);
    await eventually(async () => (await node(nodeId)).health === 'healthy', 5_000);
    const metrics = await env.rt.metrics.registry.metrics();
    expect(metrics).toMatch(/relaygrid_fleet_node_health_changes_total\{health="down"\} [1-9]/);
    expect(metrics).toMatch(/relaygrid_fleet_agent_requests_total\{op="report",outcome="ok"\} [1-9]/);
  });

  it('with two fleet workers, each hears every heartbeat: a live node is never judged down', async () => {
    const subject = env.rt.names.aggregate('fleet', 'node', 'r-1');
    const events = async () => (await env.rt.nats.jsm.streams.info(env.rt.names.stream('fleet'), { subjects_filter: subject })).state.subjects?.[subject] ?? 0;
    const before = await events();
    const second = await startFleetWorker(env.rt, { downAfterMs: 1_000 });
    try {
      // Long enough for a worker that heard only half the heartbeats (200 ms apart) to call the node down.
      await new Promise((r) => setTimeout(r, 2_500));
      expect((await node('r-1')).health).toBe('healthy');
      expect(await events()).toBe(before);
    } finally {
      await second.close();
    }
  });

  it('a retired node’s agent is told at once and stops its core', async () => {
    const { driver } = agents.get('r-4')!;
    await worker.fleet.nodes.operate('Retire', 'r-4', operator);
    await eventually(() => driver.calls.some((c) => c.op === 'stop'), 5_000);
    expect((await node('r-4')).retired).toBe(true);
  });

  it('imports nodes.yaml: created once, updated on change, never duplicated', async () => {
    const file = join(dir, 'nodes.yaml');
    const write = (city: string) =>
      writeFile(file, `nodes:\n  - name: disc-1\n    address: 198.51.100.4\n    region: eu\n    country: nl\n    city: ${city}\n    labels: [edge]\n  - name: disc-2\n    address: 198.51.100.5\n`);
    await write('Amsterdam');
    await runFleetCli(env.rt, ['import', file]);
    await runFleetCli(env.rt, ['import', file]);
    await write('Rotterdam');
    await runFleetCli(env.rt, ['import', file]);
    const lastSeq = (id: string) => worker.fleet.deps.handler.store.read(env.rt.names.aggregate('fleet', 'node', id));
    expect((await lastSeq('disc-1')).events.map((e) => e.type)).toEqual(['fleet.NodeRegistered', 'fleet.NodeUpdated']);
    expect((await lastSeq('disc-2')).events.map((e) => e.type)).toEqual(['fleet.NodeRegistered']);
    await eventually(async () => (await node('disc-1')).city === 'Rotterdam');
    expect((await node('disc-1')).country).toBe('NL');

    await writeFile(file, 'nodes:\n  - name: disc-3\n    address: "not a host!"\n');
    await expect(runFleetCli(env.rt, ['import', file])).rejects.toThrow(/nodes\[0\] \(disc-3\): address: must be a host name or an IP address/);

    // One node from the command line; a taken name is refused by name.
    await runFleetCli(env.rt, ['add', 'cli-1', '--address', '198.51.100.9', '--labels', 'edge,eu', '--country', 'de']);
    await eventually(async () => (await node('cli-1')).labels.join() === 'edge,eu');
    await expect(runFleetCli(env.rt, ['add', 'cli-1', '--address', '198.51.100.9'])).rejects.toThrow('node cli-1 already exists');
    await expect(runFleetCli(env.rt, ['add', 'cli-2'])).rejects.toThrow(/--address: required/);
  });
});
