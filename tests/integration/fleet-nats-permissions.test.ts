/**
 * Per-node NATS credentials from infra/, on a nats-server of the test's own:
 * two nodes enroll with one-time tokens, the server is reloaded with the
 * configuration `relaygrid nats-config` renders (their bcrypt hashes from the
 * fleet read model), and node A's agent credentials:
 * - can ask for and fetch its own configuration, and report for itself;
 * - cannot ask for node B's configuration, report or send usage as node B,
 *   read node B's pushes or replies, append any event, or use JetStream.
 */
import { randomBytes } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { natsServerConfig } from '../../infra/nats/server-config.js';
import { startFleetWorker, type RunningFleetWorker } from '../../infra/roles/fleet.js';
import { enrolledNodes } from '../../infra/roles/nats-config.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { openRuntime, type Runtime } from '../../infra/runtime.js';
import type { AgentReply, DesiredReply } from '../../workers/fleet/agent-protocol.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { startNatsServer, type OwnNatsServer } from '../support/nats-server.js';

const operator = { actor: 'operator:test' };

describe('per-node NATS credentials', () => {
  const passwords = { operator: randomBytes(12).toString('hex'), service: randomBytes(12).toString('hex'), analyst: randomBytes(12).toString('hex'), audit: randomBytes(12).toString('hex'), gateway: randomBytes(12).toString('hex') };
  const namespace = `t${randomBytes(5).toString('hex')}`;
  let server: OwnNatsServer;
  let env: Isolated;
  let serviceRt: Runtime;
  let projectors: RunningProjectors;
  let worker: RunningFleetWorker;
  const agents: Record<string, NatsConnection> = {};
  const url = (user: keyof typeof passwords) => `nats://${user}:${passwords[user]}@127.0.0.1:${server.port}`;
  const subject = (node: string, op: string) => `${namespace}.fleet.agent.${node}.${op}`;

  beforeAll(async () => {
    const render = (nodes: Awaited<ReturnType<typeof enrolledNodes>>) => (port: number, storeDir: string) => natsServerConfig({ namespace, port, storeDir, passwords, nodes });
    server = await startNatsServer(render([]));
    env = await isolated({ env: { NATS_URL: url('operator'), RG_NAMESPACE: namespace } });
    // The fleet worker and projectors run with service credentials, as in production.
    serviceRt = await openRuntime({ ...env.config, natsUrl: url('service') }, 'test-fleet');
    projectors = startProjectors(serviceRt);
    worker = await startFleetWorker(serviceRt);
    const { nodes, profiles, rollouts } = worker.fleet;
    const credentials: Record<string, { user: string; password: string }> = {};
    for (const nodeId of ['node-a', 'node-b']) {
      await nodes.register({ nodeId, address: '127.0.0.1', labels: [nodeId] }, 'api', operator);
      const { token } = await nodes.issueEnrollmentToken(nodeId, operator);
      credentials[nodeId] = await nodes.enroll(token);
      await profiles.create({ profileId: `p-${nodeId}`, kind: 'vless', port: nodeId === 'node-a' ? 20001 : 20002, labels: [nodeId] }, operator);
    }
    await eventually(async () => (await enrolledNodes(env.config.databaseUrl)).length === 2);
    await rollouts.plan({ reason: 'permissions test' }, operator);
    await eventually(async () => (await serviceRt.db.selectFrom('fleet_nodes').select('desired_template').where('desired_template', 'is not', null).execute()).length >= 1);
    await server.reload(render(await enrolledNodes(env.config.databaseUrl)));
    for (const nodeId of ['node-a', 'node-b']) {
      agents[nodeId] = await connect({ servers: `127.0.0.1:${server.port}`, user: credentials[nodeId]!.user, pass: credentials[nodeId]!.password, inboxPrefix: env.rt.names.fleetInbox(nodeId) });
    }
  }, 60_000);

  afterAll(async () => {
    for (const nc of Object.values(agents)) await nc.close();
    await worker?.close();
    await projectors?.close();
    await serviceRt?.close();
    await env?.cleanup();
    await server?.stop();
  });

  const ask = async <T>(nc: NatsConnection, subj: string, body: unknown = {}) => JSON.parse((await nc.request(subj, JSON.stringify(body), { timeout: 3_000 })).string()) as AgentReply<T>;

  it('an enrolled agent asks for its own desired version and reports for itself', async () => {
    const desired = await eventually(async () => {
      const reply = await ask<DesiredReply>(agents['node-a']!, subject('node-a', 'desired'));
      return reply.ok && reply.result.version ? reply.result : undefined;
    });
    expect(desired.template).toMatch(/^sha256-/);
    const chunk = await ask<{ total: number; data: string }>(agents['node-a']!, subject('node-a', 'config'), { version: desired.version, offset: 0 });
    expect(chunk.ok).toBe(true);
    const report = await ask(agents['node-a']!, subject('node-a', 'report'), { template: desired.template, version: desired.version, rolloutId: desired.rolloutId, outcome: 'applied', restarted: true, error: null });
    expect(report).toEqual({ ok: true, result: {} });
  });

  it.each([
    ['ask for node B’s configuration', 'desired'],
    ['fetch node B’s configuration', 'config'],
    ['report as node B', 'report'],
    ['send usage as node B', 'usage'],
  ])('node A cannot %s', async (_what, op) => {
    await expect(agents['node-a']!.request(subject('node-b', op), '{}', { timeout: 1_000 })).rejects.toThrow(/permissions? violation/i);
  });

  it('node A cannot append events, nor use JetStream at all', async () => {
    await expect(agents['node-a']!.request(`${namespace}.evt.fleet.node.node-b`, '{}', { timeout: 1_000 })).rejects.toThrow(/permissions? violation/i);
    await expect(agents['node-a']!.request(`$JS.API.STREAM.INFO.${namespace.toUpperCase()}_FLEET`, '', { timeout: 1_000 })).rejects.toThrow(/permissions? violation/i);
    await expect(agents['node-a']!.request(`$JS.API.CONSUMER.CREATE.OBJ_${namespace.toUpperCase()}_FLEET_CONFIGS`, '{}', { timeout: 1_000 })).rejects.toThrow(/permissions? violation/i);
  });

  it('node A cannot read node B’s pushes or replies', async () => {
    for (const forbidden of [env.rt.names.fleetPush('node-b'), `${env.rt.names.fleetInbox('node-b')}.>`, '_INBOX.>', `${namespace}.>`]) {
      const sub = agents['node-a']!.subscribe(forbidden);
      const closedWith = await sub.closed;
      expect(closedWith instanceof Error ? closedWith.message : 'closed without an error').toMatch(/permissions? violation/i);
    }
    // B's own channel still works for B: a reply to B arrives.
    const reply = await ask<DesiredReply>(agents['node-b']!, subject('node-b', 'desired'));
    expect(reply.ok).toBe(true);
  });

  it('the fleet worker, on service credentials, answers micro service discovery (what `nats micro ls` asks)', async () => {
    const info = JSON.parse((await env.rt.nats.nc.request('$SRV.INFO.relaygrid-ops', '', { timeout: 3_000 })).string()) as { name: string; metadata: Record<string, string> };
    expect(info).toMatchObject({ name: 'relaygrid-ops', metadata: { namespace } });
  });

  it('a usage tick from node A is recorded for node A, whatever the body says', async () => {
    const tickId = uuidv7();
    const at = new Date();
    const reply = await ask(agents['node-a']!, subject('node-a', 'usage'), { tickId, nodeId: 'node-b', intervalStart: at.toISOString(), intervalEnd: at.toISOString(), users: [{ userId: 'u1', uplink: '1', downlink: '2' }] });
    expect(reply.ok).toBe(true);
    await eventually(async () => (await serviceRt.db.selectFrom('usage_ticks').select('node_id').where('tick_id', '=', tickId).executeTakeFirst())?.node_id === 'node-a');
  });
});
