/**
 * The IP limit and the connection history, with the real V2Ray 4.34 core on
 * one node of this machine. Loopback has many source addresses, so client
 * cores bound to 127.0.0.1, 127.0.0.2 and 127.0.0.3 (`sendThrough`) are three
 * client IPs:
 *
 * - Alice's plan allows one IP: while she downloads from 127.0.0.1, her
 *   download from 127.0.0.2 is cut (and a retry again), her first keeps
 *   streaming, and Bob downloading from 127.0.0.2 is not touched; the cut is
 *   recorded as usage.IpLimitExceeded with the IP sealed;
 * - the connection history shows each connection (node, port, times, bytes)
 *   with its IP opened for its owner only, never plain in the read model;
 * - once Alice is forgotten, none of her IPs opens any more.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IpLimitExceededV1 } from '../../contracts/catalogue.generated.js';
import { createLogger } from '../../infra/logger.js';
import type { RunningApi } from '../../infra/roles/api.js';
import type { RunningFleetWorker } from '../../infra/roles/fleet.js';
import { freePort, LOOPBACK } from '../../infra/stack/ports.js';
import { openText } from '../../producers/identity/crypto/person-keys.js';
import { connectionHistory, type ConnectionView } from '../../producers/usage/connection-history.js';
import { NodeAgent } from '../../workers/agent/agent.js';
import { withLocalApi } from '../../workers/agent/core/local-api.js';
import { ProcessCoreDriver, stopAllCores } from '../../workers/agent/core/process-driver.js';
import { fleetStack, type FleetStackWithApi } from '../support/fleet-stack.js';
import { client } from '../support/http.js';
import { eventually, type Isolated } from '../support/isolated.js';
import { clientConfigFromLink, curl, Origin, type CurlResult } from '../support/proxy-traffic.js';

const V2RAY = process.env['V2RAY_BIN'] ?? '/usr/bin/v2ray';
const log = createLogger(process.env['LOG_LEVEL'] ?? 'silent', { test: 'ip-limit' });
const operator = { actor: 'operator:test' };
const NODE = 'node-ip';
/** A download far longer than the test (1 KiB per 20 ms): it ends only when cut. */
const LONG = 5_000_000;

describe('the IP limit and the connection history, with a real v2ray core', () => {
  let stack: FleetStackWithApi;
  let env: Isolated;
  let worker: RunningFleetWorker;
  let api: RunningApi;
  let origin: Origin;
  let originUrl: string;
  let call: ReturnType<typeof client>;
  let agent: NodeAgent;
  let agentNc: NatsConnection;
  let port: number;
  const cores: ProcessCoreDriver[] = [];
  const downloads: Promise<CurlResult>[] = [];

  async function register(email: string): Promise<{ userId: string; token: string }> {
    const { userId } = await api.identity.accounts.register({ email, password: 'correct horse battery staple' }, operator);
    return { userId, token: api.identity.deps.tokens.issue(userId, crypto.randomUUID(), ['client']) };
  }

  async function linkFor(token: string): Promise<string> {
    const sub = await eventually(async () => {
      const answer = await call<{ url: string }>('GET', '/v1/subscription', { token });
      return answer.status === 200 ? answer : undefined;
    });
    return eventually(async () => {
      const links = Buffer.from(await (await fetch(`${api.url}${sub.body.url}`)).text(), 'base64').toString('utf8').split('\n').filter(Boolean);
      return links.find((l) => new URL(l).port === String(port));
    });
  }

  /** A client core from a share link whose connections to the node come from `source`; answers its SOCKS port. */
  async function clientFrom(link: string, source: string): Promise<number> {
    const socksPort = await freePort();
    const apiPort = await freePort();
    const driver = new ProcessCoreDriver({ flavour: 'v2ray', binary: V2RAY, apiPort, logger: log, stopGraceMs: 2_000 });
    cores.push(driver);
    const file = join(stack.dir, `client-${socksPort}.json`);
    await writeFile(file, JSON.stringify(withLocalApi(clientConfigFromLink(link, socksPort, { sendThrough: source }), apiPort)));
    await driver.start(file);
    await eventually(async () => (await curl(socksPort, `${originUrl}/bytes/100`)).code === 0, 10_000, 200);
    return socksPort;
  }

  function download(socks: number): Promise<CurlResult> {
    const d = curl(socks, `${originUrl}/trickle/${LONG}`, ['--max-time', '60']);
    downloads.push(d);
    return d;
  }

  const within = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<null>((r) => setTimeout(() => r(null), ms))]);
  const liveIps = (userId: string) => worker.ipLimit.liveIps(userId).map((l) => l.ip).sort();

  async function subscribe(userId: string, planId: string): Promise<void> {
    await api.plans.subscriptions.start(userId, { planId }, operator);
    await eventually(async () => (await env.rt.db.selectFrom('subscriptions').select('ip_limit').where('user_id', '=', userId).executeTakeFirst())?.ip_limit === 1);
  }

  let alice: { userId: string; token: string };
  let bob: { userId: string; token: string };

  beforeAll(async () => {
    stack = await fleetStack({ downAfterMs: 2_000, api: true });
    ({ env, worker, api } = stack);
    origin = new Origin();
    originUrl = `http://${LOOPBACK}:${await origin.listen()}`;
    call = client(api.url);
    port = await freePort();
    await worker.fleet.nodes.register({ nodeId: NODE, address: LOOPBACK, city: 'Loopback', labels: ['ip'] }, 'api', operator);
    await worker.fleet.profiles.create({ profileId: 'vless-ip', kind: 'vless', port, labels: ['ip'] }, operator);
    await api.plans.catalogue.create({ planId: 'one-ip', name: 'One IP', allowanceBytes: null, resetStrategy: 'none', validity: { kind: 'days', days: 30 }, ipLimit: 1, nodeLabels: ['ip'], price: { amountMinor: 100, currency: 'EUR' } }, operator);
    alice = await register(`alice-${Date.now()}@example.org`);
    bob = await register(`bob-${Date.now()}@example.org`);
    await subscribe(alice.userId, 'one-ip');
    await subscribe(bob.userId, 'one-ip');

    agentNc = await connect({ servers: env.config.natsUrl, inboxPrefix: env.rt.names.fleetInbox(NODE) });
    const apiPort = await freePort();
    const driver = new ProcessCoreDriver({ flavour: 'v2ray', binary: V2RAY, apiPort, logger: log, stopGraceMs: 2_000 });
    agent = new NodeAgent({ nc: agentNc, names: env.rt.names, nodeId: NODE, stateDir: join(stack.dir, NODE), driver, apiPort, log, syncIntervalMs: 1_000, heartbeatIntervalMs: 300, usageIntervalMs: 300, connectionPruneIntervalMs: 500 });
    await agent.start();
    await eventually(async () => (await env.rt.db.selectFrom('fleet_nodes').select('health').where('id', '=', NODE).executeTakeFirstOrThrow()).health === 'healthy', 10_000);
    const { rolloutId } = await worker.fleet.rollouts.plan({ reason: 'ip limit' }, operator);
    await eventually(async () => (await env.rt.db.selectFrom('fleet_rollouts').select('status').where('id', '=', rolloutId).executeTakeFirstOrThrow()).status === 'completed', 20_000);
  }, 90_000);

  afterAll(async () => {
    origin?.release();
    await Promise.all(cores.map((c) => c.stop()));
    await Promise.allSettled(downloads);
    await agent?.stop(true);
    await agentNc?.close();
    await stopAllCores();
    await origin?.close();
    await stack?.close();
  });

  it('with IP limit 1, a second client IP of the same user is cut, again on a retry, while the first keeps downloading and another user from that IP is untouched', async () => {
    const aliceLink = await linkFor(alice.token);
    const aliceFirst = await clientFrom(aliceLink, '127.0.0.1');
    const bobSecondIp = await clientFrom(await linkFor(bob.token), '127.0.0.2');
    // The probes of clientFrom closed; the fleet forgets their IPs once the agent saw them go.
    await eventually(() => liveIps(alice.userId).length === 0 && liveIps(bob.userId).length === 0, 5_000);

    const first = download(aliceFirst);
    const bobs = download(bobSecondIp);
    await eventually(() => liveIps(alice.userId).join() === '127.0.0.1' && liveIps(bob.userId).join() === '127.0.0.2', 5_000);
    const cutsBefore = worker.ipLimit.stats.cuts;

    // Alice from a second IP: cut within seconds (the core alone would let it run: she is a valid user).
    // (clientFrom's short probe from there finishes before the cut, or is retried until one does.)
    const aliceSecond = await clientFrom(aliceLink, '127.0.0.2');
    for (let attempt = 0; attempt < 2; attempt++) {
      const startedAt = Date.now();
      const second = await within(curl(aliceSecond, `${originUrl}/trickle/${LONG}`, ['--max-time', '60']), 5_000);
      expect(second, `attempt ${attempt}: Alice's download from a second IP still streams after 5 s`).not.toBeNull();
      expect(second!.code).not.toBe(0);
      expect(second!.body).toBeLessThan(LONG);
      expect(Date.now() - startedAt).toBeLessThan(5_000);
    }
    expect(worker.ipLimit.stats.cuts).toBeGreaterThan(cutsBefore);

    // Her first download and Bob's (from the very IP that was cut for Alice) still stream.
    expect(await within(first, 500)).toBeNull();
    expect(await within(bobs, 500)).toBeNull();
    expect(origin.openTrickles).toBe(2);
    // Still a proxy user: the limit is on concurrent IPs, not on access.
    expect(liveIps(alice.userId)).toEqual(['127.0.0.1']);

    // Recorded, the IP sealed with Alice's key.
    const { events } = await worker.fleet.deps.handler.store.read(env.rt.names.aggregate('usage', 'iplimit', alice.userId));
    expect(events.length).toBeGreaterThan(0);
    const exceeded = events[0]!.data as IpLimitExceededV1;
    expect(exceeded).toMatchObject({ userId: alice.userId, ipLimit: 1, ipCount: 2, nodeIds: [NODE] });
    expect(Buffer.from(exceeded.clientIpSealed!).includes('127.0.0.2')).toBe(false);
    expect(openText(await api.identity.deps.keys.get(alice.userId), alice.userId, exceeded.clientIpSealed)).toBe('127.0.0.2');
    const bobEvents = await worker.fleet.deps.handler.store.read(env.rt.names.aggregate('usage', 'iplimit', bob.userId));
    expect(bobEvents.events).toEqual([]);
  }, 90_000);

  it('keeps every connection in the history with node, port, times and bytes; the IP is opened for its owner only and never stored plain', async () => {
    origin.release();
    const history = await eventually(async () => {
      const res = await call<{ connections: ConnectionView[]; nextCursor: string | null }>('GET', '/v1/account/connections?limit=500', { token: alice.token });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
      const closedSecond = res.body.connections.filter((c) => c.clientIp === '127.0.0.2' && c.closedAt !== null);
      return closedSecond.length >= 2 && res.body.connections.some((c) => c.clientIp === '127.0.0.1') ? res.body : undefined;
    }, 10_000);
    // The port is known once `ss` saw the socket (a listing, or the cut): short probes may end before either.
    for (const c of history.connections) expect(c.nodeId).toBe(NODE);
    for (const c of history.connections) expect([null, port]).toContain(c.port);
    // Cut within tens of milliseconds: the request went up, often nothing came back yet.
    const cut = history.connections.filter((c) => c.clientIp === '127.0.0.2' && c.closedAt !== null && BigInt(c.uplink) > 0n);
    expect(cut.length).toBeGreaterThanOrEqual(2);
    for (const c of cut) expect(c.port).toBe(port);
    const streaming = history.connections.find((c) => c.clientIp === '127.0.0.1' && c.closedAt === null);
    expect(streaming?.port).toBe(port);
    // Alice's first client goes away: its connection closes with the bytes `ss` counted.
    await cores[0]!.stop();
    const ended = await eventually(async () => {
      const res = await call<{ connections: ConnectionView[] }>('GET', '/v1/account/connections?limit=500', { token: alice.token });
      const c = res.body.connections.find((x) => x.connectionId === streaming!.connectionId);
      return c?.closedAt ? c : undefined;
    }, 10_000);
    expect(BigInt(ended.downlink)).toBeGreaterThan(10_000n);
    expect(BigInt(ended.uplink)).toBeGreaterThan(0n);
    for (const c of cut) expect(Date.parse(c.closedAt!)).toBeGreaterThanOrEqual(Date.parse(c.openedAt));

    // Pages: newest first, each connection once.
    const page1 = await call<{ connections: ConnectionView[]; nextCursor: string | null }>('GET', '/v1/account/connections?limit=1', { token: alice.token });
    expect(page1.body.connections).toHaveLength(1);
    const page2 = await call<{ connections: ConnectionView[] }>('GET', `/v1/account/connections?limit=1&cursor=${page1.body.nextCursor}`, { token: alice.token });
    expect(page2.body.connections[0]!.connectionId).not.toBe(page1.body.connections[0]!.connectionId);
    expect(Date.parse(page2.body.connections[0]!.openedAt)).toBeLessThanOrEqual(Date.parse(page1.body.connections[0]!.openedAt));
    const bad = await call<{ code: string }>('GET', '/v1/account/connections?cursor=bm9wZQ', { token: alice.token });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('invalid_cursor');

    // Someone else's: for operators, and without the IP.
    expect((await call('GET', `/v1/account/connections?userId=${alice.userId}`, { token: bob.token })).status).toBe(403);
    const opToken = api.identity.deps.tokens.issue(bob.userId, crypto.randomUUID(), ['operator']);
    const seen = await call<{ connections: ConnectionView[] }>('GET', `/v1/account/connections?userId=${alice.userId}&limit=500`, { token: opToken });
    expect(seen.status).toBe(200);
    expect(seen.body.connections.length).toBe(history.connections.length);
    expect(seen.body.connections.every((c) => c.clientIp === null)).toBe(true);

    // The read model holds sealed bytes only.
    const rows = await env.rt.db.selectFrom('connection_history').select('client_ip_sealed').where('user_id', '=', alice.userId).execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.client_ip_sealed?.includes('127.0.0.')).toBe(false);
  }, 30_000);

  it('a forgotten user’s IPs no longer open, in the history or in the IP limit’s events', async () => {
    const keys = api.identity.deps.keys;
    await api.identity.accounts.forget(alice.userId, operator);
    expect(await keys.get(alice.userId)).toBeUndefined();
    const page = await connectionHistory(env.rt.db, keys, alice.userId, { from: new Date(Date.now() - 3_600_000), to: new Date(Date.now() + 60_000), limit: 500, openIps: true });
    expect(page.connections.length).toBeGreaterThan(0);
    expect(page.connections.every((c) => c.clientIp === null)).toBe(true);
    // The events keep their sealed bytes (the log is immutable), and nothing opens them now.
    const { events } = await worker.fleet.deps.handler.store.read(env.rt.names.aggregate('usage', 'iplimit', alice.userId));
    expect(events.length).toBeGreaterThan(0);
    const keysNow = await keys.getMany([alice.userId]);
    expect(events.every((e) => (e.data as IpLimitExceededV1).clientIpSealed !== null && openText(keysNow.get(alice.userId), alice.userId, (e.data as IpLimitExceededV1).clientIpSealed) === null)).toBe(true);
  }, 30_000);
});
