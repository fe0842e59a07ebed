/**
 * The fleet end to end, with the real V2Ray 4.34 core (`/usr/bin/v2ray`, or
 * V2RAY_BIN) on two nodes of this machine, real NATS, Postgres and Redis:
 *
 * - an operator registers nodes and a VLESS profile, a user registers; a
 *   rollout reaches the agents, which apply it to their cores; a client core
 *   configured from the user's subscription link carries curl through the
 *   node to a local HTTP server;
 * - the bytes of that transfer appear in the user's usage;
 * - suspending the user closes their open connections and makes their new
 *   ones fail within seconds, while another user's download through the
 *   same node completes, with no core restart;
 * - an agent that was down during a rollout applies it when it returns;
 * - a profile the core rejects: the canary reports the core's error, keeps
 *   serving its last good configuration, and the rollout halts after it;
 * - access is a function of the subscription: a user without one is on no
 *   node (empty link, connections refused), a plan naming one node's label
 *   puts them on that node only, disabling it removes them live and enabling
 *   restores the same link, without a core restart; an admin without a
 *   subscription is no proxy user.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../infra/logger.js';
import type { RunningApi } from '../../infra/roles/api.js';
import type { RunningFleetWorker } from '../../infra/roles/fleet.js';
import { freePort, LOOPBACK } from '../../infra/stack/ports.js';
import { NodeAgent } from '../../workers/agent/agent.js';
import { ProcessCoreDriver, stopAllCores } from '../../workers/agent/core/process-driver.js';
import { withLocalApi } from '../../workers/agent/core/local-api.js';
import { proxyUserOf } from '../../producers/fleet/model.js';
import { describeEndpoint } from '../../producers/fleet/subscription/endpoint.js';
import { shareLink } from '../../producers/fleet/subscription/share-links.js';
import type { Role } from '../../producers/identity/roles.js';
import { client } from '../support/http.js';
import { fleetStack, type FleetStackWithApi } from '../support/fleet-stack.js';
import { eventually, type Isolated } from '../support/isolated.js';
import { readLog } from '../support/log.js';
import { createPlan, grantPlan } from '../support/plans.js';
import { clientConfigFromLink, curl, Origin } from '../support/proxy-traffic.js';

const V2RAY = process.env['V2RAY_BIN'] ?? '/usr/bin/v2ray';
const log = createLogger(process.env['LOG_LEVEL'] ?? 'silent', { test: 'fleet-e2e' });
const operator = { actor: 'operator:test' };
/** Response and request headers of a few requests, beside the bodies. */
const OVERHEAD_BYTES = 4_096;

interface RunningAgent {
  agent: NodeAgent;
  driver: ProcessCoreDriver;
  nc: NatsConnection;
  stop(): Promise<void>;
}

describe('the fleet with real v2ray cores', () => {
  let stack: FleetStackWithApi;
  let env: Isolated;
  let worker: RunningFleetWorker;
  let api: RunningApi;
  let dir: string;
  let origin: Origin;
  let originUrl: string;
  let call: ReturnType<typeof client>;
  const agents = new Map<string, RunningAgent>();
  const clients: ProcessCoreDriver[] = [];
  const ports = { a: 0, b: 0, bad: 0 };
  /** Every node, every kind: access needs a subscription, and these users are not about plans. */
  let everywhere: string;

  async function startAgent(nodeId: string): Promise<RunningAgent> {
    const nc = await connect({ servers: env.config.natsUrl, inboxPrefix: env.rt.names.fleetInbox(nodeId) });
    const apiPort = await freePort();
    const driver = new ProcessCoreDriver({ flavour: 'v2ray', binary: V2RAY, apiPort, logger: log, stopGraceMs: 2_000 });
    const agent = new NodeAgent({ nc, names: env.rt.names, nodeId, stateDir: join(dir, nodeId), driver, apiPort, log, syncIntervalMs: 1_000, heartbeatIntervalMs: 300, usageIntervalMs: 300 });
    await agent.start();
    const running: RunningAgent = {
      agent,
      driver,
      nc,
      stop: async () => {
        await agent.stop(true);
        await nc.close();
        agents.delete(nodeId);
      },
    };
    agents.set(nodeId, running);
    return running;
  }

  const node = (id: string) => env.rt.db.selectFrom('fleet_nodes').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const rollout = (id: string) => env.rt.db.selectFrom('fleet_rollouts').selectAll().where('id', '=', id).executeTakeFirstOrThrow();

  /** A registered user with proxy credentials, on the every-node plan unless `plan` is null. */
  async function register(email: string, plan: string | null = everywhere, roles: Role[] = ['client']): Promise<{ userId: string; token: string }> {
    const { userId } = await api.identity.accounts.register({ email, password: 'correct horse battery staple', roles }, operator);
    if (plan) await grantPlan(api.plans, userId, plan);
    return { userId, token: api.identity.deps.tokens.issue(userId, crypto.randomUUID(), roles) };
  }

  /** The user's subscription link's share links, as a client fetches them. */
  async function listed(token: string): Promise<string[]> {
    const sub = await eventually(async () => {
      const answer = await call<{ url: string }>('GET', '/v1/subscription', { token });
      return answer.status === 200 ? answer : undefined;
    });
    const res = await fetch(`${api.url}${sub.body.url}`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.text(), 'base64').toString('utf8').split('\n').filter(Boolean);
  }

  /** A share link for the user's own credentials on a VLESS port, whether or not their subscription lists it. */
  async function directLink(userId: string, port: number): Promise<string> {
    const row = await eventually(() => env.rt.db.selectFrom('proxy_credentials').selectAll().where('user_id', '=', userId).executeTakeFirst());
    return shareLink(describeEndpoint({ name: 'direct', address: LOOPBACK, city: '' }, { profileId: 'direct', kind: 'vless', port, settings: {} }, proxyUserOf(row)))!;
  }

  /** Whether the user is in the configuration node `nodeId` is meant to run now. */
  async function renderedFor(nodeId: string, userId: string): Promise<boolean> {
    const n = await node(nodeId);
    return (await worker.fleet.configs.render(n.applied_template!, n.labels)).bytes.toString().includes(userId);
  }

  /** The user's subscription, as a proxy client fetches it: the share link of `port` on node `nodeId`. */
  async function linkFor(token: string, port: number): Promise<string> {
    // A user registered a moment ago: their credentials reach the read model shortly.
    const sub = await eventually(async () => {
      const answer = await call<{ url: string }>('GET', '/v1/subscription', { token });
      return answer.status === 200 ? answer : undefined;
    });
    // The node is listed once it is healthy and told its template.
    return eventually(async () => {
      const res = await fetch(`${api.url}${sub.body.url}`);
      expect(res.status).toBe(200);
      const links = Buffer.from(await res.text(), 'base64').toString('utf8').split('\n').filter(Boolean);
      return links.find((l) => new URL(l).port === String(port));
    });
  }

  /** A client core started from a share link; answers its SOCKS port. */
  async function clientFrom(link: string): Promise<number> {
    const socksPort = await freePort();
    const apiPort = await freePort();
    const driver = new ProcessCoreDriver({ flavour: 'v2ray', binary: V2RAY, apiPort, logger: log, stopGraceMs: 2_000 });
    clients.push(driver);
    const file = join(dir, `client-${socksPort}.json`);
    await writeFile(file, JSON.stringify(withLocalApi(clientConfigFromLink(link, socksPort), apiPort)));
    await driver.start(file);
    return socksPort;
  }

  async function completedRollout(reason: string): Promise<string> {
    const { rolloutId } = await worker.fleet.rollouts.plan({ reason }, operator);
    await eventually(async () => (await rollout(rolloutId)).status === 'completed', 20_000);
    return rolloutId;
  }

  beforeAll(async () => {
    stack = await fleetStack({ downAfterMs: 2_000, api: true });
    ({ env, worker, api, dir } = stack);
    origin = new Origin();
    originUrl = `http://${LOOPBACK}:${await origin.listen()}`;
    call = client(api.url);
    everywhere = await createPlan(api.plans);
    ports.a = await freePort();
    ports.b = await freePort();
    ports.bad = await freePort();
    const { nodes, profiles } = worker.fleet;
    await nodes.register({ nodeId: 'node-a', address: LOOPBACK, city: 'Loopback', labels: ['a', 'all'] }, 'api', operator);
    await nodes.register({ nodeId: 'node-b', address: LOOPBACK, city: 'Loopback', labels: ['b', 'all'] }, 'api', operator);
    await profiles.create({ profileId: 'vless-a', kind: 'vless', port: ports.a, labels: ['a'] }, operator);
  }, 60_000);

  afterAll(async () => {
    for (const a of [...agents.values()]) await a.stop();
    await Promise.all(clients.map((c) => c.stop()));
    await stopAllCores();
    await origin?.close();
    await stack?.close();
  });

  it('rolls out to the agents, and a client from the subscription link proxies through the node; the bytes show in usage', async () => {
    await startAgent('node-a');
    await startAgent('node-b');
    const alice = await register(`alice-${Date.now()}@example.org`);
    // Both nodes heartbeat their way to healthy before anything is planned, so either may be the canary.
    await eventually(async () => (await node('node-a')).health === 'healthy' && (await node('node-b')).health === 'healthy', 10_000);
    const rolloutId = await completedRollout('first profiles');

    const a = await node('node-a');
    expect(a.applied_template).toBe(a.desired_template);
    expect(a.desired_rollout).toBe(rolloutId);
    expect(agents.get('node-a')!.agent.appliedTemplate).toBe(a.desired_template);
    const reports = await env.rt.db.selectFrom('fleet_rollout_nodes').selectAll().where('rollout_id', '=', rolloutId).execute();
    expect(reports.map((r) => [r.node_id, r.outcome]).sort()).toEqual([
      ['node-a', 'applied'],
      ['node-b', 'applied'],
    ]);

    // The user registered before the rollout: the rendered configuration carries them, or the push did.
    const socks = await clientFrom(await linkFor(alice.token, ports.a));
    const size = 200_000;
    await eventually(async () => (await curl(socks, `${originUrl}/bytes/${size}`)).code === 0, 10_000, 200);

    // Usage: every tick the agent sends lands in the user's hourly row.
    await eventually(async () => {
      const row = await env.rt.db.selectFrom('usage_user_hourly').select(['downlink', 'uplink']).where('user_id', '=', alice.userId).executeTakeFirst();
      return row && row.downlink >= size;
    }, 10_000);
    const row = await env.rt.db.selectFrom('usage_user_hourly').select(['downlink', 'uplink']).where('user_id', '=', alice.userId).executeTakeFirstOrThrow();
    // The successful download and any refused attempts before it: within headers' worth of the body.
    expect(row.downlink).toBeLessThan(size + OVERHEAD_BYTES);
    expect(row.uplink).toBeGreaterThan(0);
    const monthly = await call<{ downlink: string }>('GET', '/v1/usage/monthly', { token: alice.token });
    expect(monthly.status, JSON.stringify(monthly.body)).toBe(200);
    expect(BigInt(monthly.body.downlink)).toBe(BigInt(row.downlink));
  }, 60_000);

  it('suspension closes the user’s open download and refuses new connections within seconds while another user’s download completes, without a restart', async () => {
    const alice = await register(`alice2-${Date.now()}@example.org`);
    const bob = await register(`bob-${Date.now()}@example.org`);
    const aliceSocks = await clientFrom(await linkFor(alice.token, ports.a));
    const bobSocks = await clientFrom(await linkFor(bob.token, ports.a));
    // New users reach the running core by push, without a new version.
    await eventually(async () => (await curl(aliceSocks, `${originUrl}/bytes/1000`)).code === 0 && (await curl(bobSocks, `${originUrl}/bytes/1000`)).code === 0, 10_000, 200);
    const restartsBefore = agents.get('node-a')!.agent.stats.restarts;
    const pidBefore = agents.get('node-a')!.driver.pid;

    const held = curl(bobSocks, `${originUrl}/held/400000`);
    // Alice's download is streaming (a few MB at 50 KB/s: far longer than the test) when she is suspended.
    const trickleBytes = 5_000_000;
    const aliceDownload = curl(aliceSocks, `${originUrl}/trickle/${trickleBytes}`);
    await eventually(() => origin.heldRequests > 0 && origin.openTrickles > 0, 5_000);
    await new Promise((r) => setTimeout(r, 300));
    const suspendedAt = Date.now();
    await api.identity.admin.suspend(alice.userId, 'test', operator);
    // Her open connection ends (the core alone would let it stream on), and the origin stops sending.
    const cut = await Promise.race([aliceDownload, new Promise<null>((r) => setTimeout(() => r(null), 3_000))]);
    expect(cut, 'Alice’s open download still streams 3 s after her suspension').not.toBeNull();
    expect(cut!.code).not.toBe(0);
    expect(cut!.body).toBeGreaterThan(0);
    expect(cut!.body).toBeLessThan(trickleBytes);
    await eventually(() => origin.openTrickles === 0, 1_000, 20);
    // The agent notes the kernel's answer when `ss` returns, which may be a moment after the client saw the reset.
    await eventually(() => agents.get('node-a')!.agent.connections?.support === 'ok', 1_000, 20);
    await eventually(async () => (await curl(aliceSocks, `${originUrl}/bytes/1000`)).code !== 0, 5_000, 100);
    expect(Date.now() - suspendedAt).toBeLessThan(5_000);

    origin.release();
    expect(await held).toMatchObject({ code: 0, body: 400_000 });
    expect((await curl(bobSocks, `${originUrl}/bytes/1000`)).code).toBe(0);
    expect(agents.get('node-a')!.agent.stats.restarts).toBe(restartsBefore);
    expect(agents.get('node-a')!.driver.pid).toBe(pidBefore);

    // The next rendered version agrees with the push: it no longer lists Alice, and applying it restarted nothing.
    await eventually(async () => {
      const version = agents.get('node-a')!.agent.appliedVersion;
      const a = await node('node-a');
      const desired = await worker.fleet.configs.render(a.desired_template!, a.labels);
      return version === desired.version && !desired.bytes.toString().includes(alice.userId);
    }, 10_000);
    expect(agents.get('node-a')!.agent.stats.restarts).toBe(restartsBefore);

    // Reinstated, Alice's link works again; Bob's rotated credentials replace his old ones. Still no restart.
    await api.identity.admin.reinstate(alice.userId, operator);
    await eventually(async () => (await curl(aliceSocks, `${originUrl}/bytes/1000`)).code === 0, 5_000, 100);
    const oldLink = await linkFor(bob.token, ports.a);
    await api.identity.accounts.rotateProxyCredentials(bob.userId, operator);
    await eventually(async () => (await curl(bobSocks, `${originUrl}/bytes/1000`)).code !== 0, 5_000, 100);
    const newLink = await eventually(async () => {
      const link = await linkFor(bob.token, ports.a);
      return link !== oldLink ? link : undefined;
    });
    const rotatedSocks = await clientFrom(newLink);
    await eventually(async () => (await curl(rotatedSocks, `${originUrl}/bytes/1000`)).code === 0, 5_000, 100);
    expect(agents.get('node-a')!.agent.stats.restarts).toBe(restartsBefore);
    expect(agents.get('node-a')!.driver.pid).toBe(pidBefore);
  }, 60_000);

  it('an agent that was down during a rollout applies the latest version when it returns', async () => {
    await agents.get('node-b')!.stop();
    await worker.fleet.profiles.create({ profileId: 'vless-b', kind: 'vless', port: ports.b, labels: ['b'] }, operator);
    const { rolloutId } = await worker.fleet.rollouts.plan({ reason: 'a profile for b' }, operator);
    await eventually(async () => (await node('node-b')).desired_rollout === rolloutId, 5_000);
    await new Promise((r) => setTimeout(r, 1_000));
    expect((await rollout(rolloutId)).status).toBe('running');

    await startAgent('node-b');
    await eventually(async () => (await rollout(rolloutId)).status === 'completed', 20_000);
    const b = await node('node-b');
    expect(b.applied_template).toBe(b.desired_template);
    const bob = await register(`bob2-${Date.now()}@example.org`);
    const socks = await clientFrom(await linkFor(bob.token, ports.b));
    await eventually(async () => (await curl(socks, `${originUrl}/bytes/1000`)).code === 0, 10_000, 200);
  }, 60_000);

  it('a profile the core rejects: the canary reports the core’s error, keeps serving, and the rollout halts after it', async () => {
    await eventually(async () => (await node('node-a')).health === 'healthy' && (await node('node-b')).health === 'healthy', 10_000);
    const before = { a: await node('node-a'), b: await node('node-b') };
    const missing = join(dir, 'no-such-cert.pem');
    await worker.fleet.profiles.create({ profileId: 'vless-tls-bad', kind: 'vless-tls', port: ports.bad, labels: ['all'], settings: { certificateFile: missing, keyFile: missing } }, operator);
    const { rolloutId } = await worker.fleet.rollouts.plan({ reason: 'a broken profile' }, operator);
    await eventually(async () => (await rollout(rolloutId)).status === 'halted', 20_000);

    const halted = await rollout(rolloutId);
    expect(halted.status_reason).toContain('canary node-a rejected');
    expect(halted.status_reason).toContain(missing);
    const a = await node('node-a');
    expect(a.last_error).toContain(missing);
    expect(a.applied_template).toBe(before.a.applied_template);
    // The second wave was never told.
    expect((await node('node-b')).desired_template).toBe(before.b.desired_template);
    // Node A still serves its last good configuration.
    const carol = await register(`carol-${Date.now()}@example.org`);
    const socks = await clientFrom(await linkFor(carol.token, ports.a));
    await eventually(async () => (await curl(socks, `${originUrl}/bytes/1000`)).code === 0, 10_000, 200);
  }, 60_000);

  it('a user without a subscription is on no node; a plan naming node A’s label puts them on node A only; disabling removes them live, enabling restores the same link, no restart', async () => {
    // Node A serves vless-a, node B vless-b (earlier tests rolled them out).
    await eventually(async () => (await node('node-a')).health === 'healthy' && (await node('node-b')).health === 'healthy', 10_000);
    const dana = await register(`dana-${Date.now()}@example.org`, null);
    expect(await listed(dana.token)).toEqual([]);
    const throughA = await clientFrom(await directLink(dana.userId, ports.a));
    const throughB = await clientFrom(await directLink(dana.userId, ports.b));
    expect((await curl(throughA, `${originUrl}/bytes/1000`)).code).not.toBe(0);
    expect(await renderedFor('node-a', dana.userId)).toBe(false);

    const onlyA = await createPlan(api.plans, { nodeLabels: ['a'] });
    await grantPlan(api.plans, dana.userId, onlyA);
    const links = await eventually(async () => {
      const l = await listed(dana.token);
      return l.length > 0 ? l : undefined;
    });
    expect(links.map((l) => new URL(l).port)).toEqual([String(ports.a)]);
    const socks = await clientFrom(links[0]!);
    await eventually(async () => (await curl(socks, `${originUrl}/bytes/1000`)).code === 0, 5_000, 100);
    expect((await curl(throughA, `${originUrl}/bytes/1000`)).code).toBe(0);
    // Node B's labels are not the plan's: neither pushed there nor rendered for it.
    expect((await curl(throughB, `${originUrl}/bytes/1000`)).code).not.toBe(0);
    expect(await renderedFor('node-b', dana.userId)).toBe(false);

    const pidBefore = agents.get('node-a')!.driver.pid;
    const restartsBefore = agents.get('node-a')!.agent.stats.restarts;
    // Her download is streaming when the subscription is disabled: the removal closes it, as a suspension does.
    const trickleBytes = 5_000_000;
    const open = curl(socks, `${originUrl}/trickle/${trickleBytes}`);
    await eventually(() => origin.openTrickles > 0, 5_000);
    await new Promise((r) => setTimeout(r, 300));
    const disabledAt = Date.now();
    await api.plans.subscriptions.disable(dana.userId, 'test', operator);
    const cut = await Promise.race([open, new Promise<null>((r) => setTimeout(() => r(null), 3_000))]);
    expect(cut, 'the open download still streams 3 s after the subscription was disabled').not.toBeNull();
    expect(cut!.body).toBeLessThan(trickleBytes);
    await eventually(async () => (await curl(socks, `${originUrl}/bytes/1000`)).code !== 0, 5_000, 100);
    expect(Date.now() - disabledAt).toBeLessThan(5_000);
    expect(await listed(dana.token)).toEqual([]);
    await eventually(async () => !(await renderedFor('node-a', dana.userId)), 5_000);

    await api.plans.subscriptions.enable(dana.userId, 'test', operator);
    await eventually(async () => (await curl(socks, `${originUrl}/bytes/1000`)).code === 0, 5_000, 100);
    expect(await listed(dana.token)).toEqual(links);
    expect(agents.get('node-a')!.driver.pid).toBe(pidBefore);
    expect(agents.get('node-a')!.agent.stats.restarts).toBe(restartsBefore);
  }, 60_000);

  it('an admin without a subscription is not a proxy user; with one, they are', async () => {
    const admin = await register(`admin-${Date.now()}@example.org`, null, ['admin', 'client']);
    const socks = await clientFrom(await directLink(admin.userId, ports.a));
    expect(await listed(admin.token)).toEqual([]);
    expect((await curl(socks, `${originUrl}/bytes/1000`)).code).not.toBe(0);
    expect(await renderedFor('node-a', admin.userId)).toBe(false);

    await grantPlan(api.plans, admin.userId, everywhere);
    await eventually(async () => (await curl(socks, `${originUrl}/bytes/1000`)).code === 0, 5_000, 100);
    expect((await listed(admin.token)).length).toBeGreaterThan(0);
  }, 60_000);
  it('a 1 MiB plan: the download that crosses the allowance is cut within 3 s while another user downloads on; a 10 MiB grant restores the same link, no restart', async () => {
    await eventually(async () => (await node('node-a')).health === 'healthy', 10_000);
    const oneMiB = await createPlan(api.plans, { allowanceBytes: String(1024 * 1024), resetStrategy: 'month', overage: 'block' });
    const carol = await register(`carol-${Date.now()}@example.org`, oneMiB);
    const erin = await register(`erin-${Date.now()}@example.org`);
    const carolSocks = await clientFrom(await linkFor(carol.token, ports.a));
    const erinSocks = await clientFrom(await linkFor(erin.token, ports.a));
    await eventually(async () => (await curl(erinSocks, `${originUrl}/bytes/1000`)).code === 0, 10_000, 200);
    // Most of the allowance at once, then a trickle (50 KB/s) that crosses it a few seconds later.
    await eventually(async () => (await curl(carolSocks, `${originUrl}/bytes/900000`)).code === 0, 10_000, 200);
    const pidBefore = agents.get('node-a')!.driver.pid;
    const restartsBefore = agents.get('node-a')!.agent.stats.restarts;
    const held = curl(erinSocks, `${originUrl}/held/400000`);
    const trickleBytes = 5_000_000;
    const crossing = curl(carolSocks, `${originUrl}/trickle/${trickleBytes}`);

    const cut = await Promise.race([crossing, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
    const cutAt = Date.now();
    expect(cut, 'the download that crossed the allowance still streams').not.toBeNull();
    expect(cut!.code).not.toBe(0);
    // The agent ticks every 300 ms and metering limits on the crossing tick: the cut follows it within 3 s.
    const limited = (await readLog(env.rt, env.rt.names.aggregate('plans', 'subscription', carol.userId))).filter((e) => e.type === 'plans.SubscriptionLimited');
    expect(limited).toHaveLength(1);
    const limitedAt = (limited[0]!.data as { limitedAt: Date }).limitedAt.getTime();
    expect(cutAt - limitedAt).toBeLessThan(3_000);
    // What she got past the allowance is what one tick interval and the cut let through, not the trickle's 5 MB.
    expect(900_000 + cut!.body).toBeLessThan(1024 * 1024 + 200_000);
    await eventually(async () => (await curl(carolSocks, `${originUrl}/bytes/1000`)).code !== 0, 5_000, 100);

    origin.release();
    expect(await held).toMatchObject({ code: 0, body: 400_000 });
    expect(agents.get('node-a')!.driver.pid).toBe(pidBefore);

    await api.plans.subscriptions.grant(carol.userId, { bytes: String(10 * 1024 * 1024), grantId: 'top-up-1' }, operator);
    await eventually(async () => (await curl(carolSocks, `${originUrl}/bytes/1000`)).code === 0, 5_000, 100);
    expect(agents.get('node-a')!.driver.pid).toBe(pidBefore);
    expect(agents.get('node-a')!.agent.stats.restarts).toBe(restartsBefore);
  }, 90_000);
});
