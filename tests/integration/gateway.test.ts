/**
 * The messenger gateway end to end: two gateways in this process over real
 * NATS, Redis and Postgres, clients speaking protocol v1 over WebSockets, users
 * and devices made through the HTTP API.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { startGateway, type RunningGateway } from '../../infra/roles/gateway.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { client } from '../support/http.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { readLog } from '../support/log.js';
import { directSend, person, WsClient, type Call, type TestPerson } from '../support/messenger.js';

describe('messenger gateway', () => {
  let env: Isolated;
  let api: RunningApi;
  let projectors: RunningProjectors;
  let g1: RunningGateway;
  let g2: RunningGateway;
  let call: Call;
  const clients: WsClient[] = [];

  beforeAll(async () => {
    env = await isolated({ env: { RG_TRUST_PROXY: 'true', RG_REGISTER_LIMIT_PER_IP: '10000', RG_LOGIN_LIMIT_PER_IP: '10000', RG_PRESENCE_OFFLINE_DEBOUNCE_MS: '200' } });
    projectors = startProjectors(env.rt);
    api = await startApi(env.rt, { host: '127.0.0.1', readTimeoutMs: 5000 });
    call = client(api.url);
    g1 = await startGateway(env.rt, { host: '127.0.0.1', port: 0 });
    g2 = await startGateway(env.rt, { host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await g1?.close();
    await g2?.close();
    await api?.close();
    await projectors?.close();
    await env?.cleanup();
  });

  async function connect(gateway: RunningGateway, p: TestPerson, device = p.devices[0] ?? '', via: 'header' | 'protocol' = 'header'): Promise<WsClient> {
    const c = await WsClient.connect(gateway.url, p.token, device, via);
    clients.push(c);
    return c;
  }

  /** The message metadata events about one device, from every gateway's batches. */
  async function trafficOf(device: string) {
    const events = await readLog(env.rt, env.rt.names.aggregateSubjects('messaging', 'traffic'));
    return events.filter((e) => (e.data as { recipientDeviceId?: string }).recipientDeviceId === device);
  }

  /** Connects and resumes from nothing, waiting for `synced`. */
  async function online(gateway: RunningGateway, p: TestPerson, device = p.devices[0] ?? ''): Promise<WsClient> {
    const c = await connect(gateway, p, device);
    c.send({ op: 'resume', epoch: '', offset: 0 });
    await c.op('synced');
    return c;
  }

  it('refuses an upgrade without a valid token or with someone else\'s device: close 4401 with the reason', async () => {
    const alice = await person(call);
    const bob = await person(call);
    const noToken = await connect(g1, { ...alice, token: '' });
    expect(await noToken.closed()).toBe(4401);
    expect(noToken.closeReason).toMatch(/access token/);
    const forged = await connect(g1, { ...alice, token: `${alice.token}x` });
    expect(await forged.closed()).toBe(4401);
    // Someone else's device id is refused, and its owner's live connection is not disturbed.
    const bobClient = await online(g1, bob);
    const notMine = await connect(g1, alice, bob.devices[0]);
    expect(await notMine.closed()).toBe(4401);
    expect(notMine.closeReason).toMatch(/not one of yours/);
    bobClient.send({ op: 'ping' });
    await bobClient.op('pong');
    expect(bobClient.closeCode).toBeUndefined();
    const browser = await connect(g1, alice, alice.devices[0], 'protocol');
    expect(browser.ws.protocol).toBe('relaygrid.v1');
    browser.send({ op: 'ping' });
    await browser.op('pong');
  });

  it('answers sent only once stored, delivers to the recipient on another gateway and to the sender\'s other device', async () => {
    const alice = await person(call, 2);
    const bob = await person(call, 1);
    const [a1, a2] = alice.devices as [string, string];
    const aliceClient = await online(g1, alice, a1);
    const aliceOther = await online(g2, alice, a2);
    const bobClient = await online(g2, bob);
    const frame = directSend(bob.userId, [...bob.devices, a2]);
    const sent = await aliceClient.request(frame);
    expect(sent).toMatchObject({ op: 'sent', id: frame.id });
    // Durable: the inbox stream holds one entry per addressed device before `sent` went out.
    const info = await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream);
    expect(info.state.messages).toBeGreaterThanOrEqual(2);
    const got = await bobClient.op('msg', (f) => f['id'] === frame.id);
    expect(got).toMatchObject({ from: { user: alice.userId, device: a1 }, type: 1, body: frame.messages[0]?.body, ts: sent['ts'] });
    expect(typeof got['epoch']).toBe('string');
    expect(got['offset']).toBeGreaterThan(0);
    await aliceOther.op('msg', (f) => f['id'] === frame.id && f['body'] === frame.messages[1]?.body);
    // The sender's own device gets nothing.
    await new Promise((r) => setTimeout(r, 100));
    expect(aliceClient.frames.filter((f) => f.op === 'msg')).toEqual([]);
  });

  it('a wrong device set answers devices_mismatch naming missing and extra devices, and stores nothing', async () => {
    const alice = await person(call, 2);
    const bob = await person(call, 2);
    const aliceClient = await online(g1, alice);
    const before = (await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream)).state.last_seq;
    const answer = await aliceClient.request(directSend(bob.userId, [bob.devices[0] ?? '', 'no-such-device']));
    expect(answer).toMatchObject({ op: 'error', code: 'devices_mismatch' });
    expect((answer['missing'] as string[]).sort()).toEqual([bob.devices[1], alice.devices[1]].sort());
    expect(answer['extra']).toEqual(['no-such-device']);
    expect((await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream)).state.last_seq).toBe(before);
  });

  it('a resend with the same id is answered the same way and stored once', async () => {
    const alice = await person(call);
    const bob = await person(call);
    const aliceClient = await online(g1, alice);
    const frame = directSend(bob.userId, bob.devices);
    const first = await aliceClient.request(frame);
    const before = (await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream)).state.last_seq;
    const again = await aliceClient.request({ ...frame, messages: frame.messages.map((m) => ({ ...m, body: 'AAAA' })) });
    expect(again).toEqual(first);
    expect((await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream)).state.last_seq).toBe(before);
    const bobClient = await online(g2, bob);
    await new Promise((r) => setTimeout(r, 200));
    expect(bobClient.frames.filter((f) => f.op === 'msg').map((f) => f['id'])).toEqual([frame.id]);
  });

  it('a client that never acks gets the same messages again on its next connection; acked ones are gone, and the sender gets a receipt', async () => {
    const alice = await person(call);
    const bob = await person(call);
    // Receipts follow the recipient's setting (contacts by default): Bob lists Alice.
    expect((await call('PUT', `/v1/contacts/${alice.userId}`, { token: bob.token })).status).toBeLessThan(300);
    const aliceClient = await online(g1, alice);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const f = directSend(bob.userId, bob.devices);
      ids.push(f.id);
      expect((await aliceClient.request(f)).op).toBe('sent');
    }
    const first = await online(g2, bob);
    await eventually(() => first.messages.length === 3);
    expect(first.messages.map((m) => m['id'])).toEqual(ids);
    first.close();
    await first.closed();

    const second = await online(g1, bob);
    await eventually(() => second.messages.length === 3);
    expect(second.messages.map((m) => m['id'])).toEqual(ids);
    const secondOffset = second.messages[1]?.['offset'] as number;
    second.send({ op: 'ack', upTo: secondOffset });
    await aliceClient.op('receipt', (f) => f['id'] === ids[1]);
    expect(aliceClient.frames.find((f) => f.op === 'receipt' && f['id'] === ids[0])).toMatchObject({ state: 'delivered', user: bob.userId, device: bob.devices[0] });
    second.close();
    await second.closed();

    const third = await connect(g2, bob);
    const epoch = String(second.messages[0]?.['epoch']);
    third.send({ op: 'resume', epoch, offset: secondOffset });
    const synced = await third.op('synced');
    expect(third.messages.map((m) => m['id'])).toEqual([ids[2]]);
    expect(synced).toMatchObject({ epoch, offset: second.messages[2]?.['offset'] });
    const delivered = await eventually(async () => {
      const events = await trafficOf(bob.devices[0] ?? '');
      const d = events.filter((e) => e.type === 'messaging.MessageDelivered');
      return d.length === 2 ? d : undefined;
    });
    expect(delivered.map((e) => (e.data as { messageId: string }).messageId)).toEqual(ids.slice(0, 2));
  });

  it('a resume from another epoch, or from before entries that expired undelivered, answers resync and starts from the oldest held', async () => {
    const alice = await person(call);
    const bob = await person(call);
    const aliceClient = await online(g1, alice);
    const kept = directSend(bob.userId, bob.devices);
    await aliceClient.request(kept);
    const bobClient = await connect(g2, bob);
    bobClient.send({ op: 'resume', epoch: 'not-this-one', offset: 5 });
    await bobClient.op('resync');
    await bobClient.op('synced');
    expect(bobClient.messages.map((m) => m['id'])).toEqual([kept.id]);
  });

  it('a disappearing message is removed at its ttl even if never delivered, and the log records the expiry', async () => {
    const alice = await person(call);
    const bob = await person(call);
    const aliceClient = await online(g1, alice);
    const vanishing = directSend(bob.userId, bob.devices, randomUUID(), { ttl: 1 });
    const staying = directSend(bob.userId, bob.devices);
    await aliceClient.request(vanishing);
    await aliceClient.request(staying);
    await eventually(async () => {
      const events = await trafficOf(bob.devices[0] ?? '');
      return events.some((e) => e.type === 'messaging.MessageExpired' && (e.data as { messageId: string }).messageId === vanishing.id);
    }, 8000);
    const bobClient = await connect(g2, bob);
    bobClient.send({ op: 'resume', epoch: '', offset: 0 });
    // Something expired undelivered: the gap cannot be filled, so resync, then what is still held.
    await bobClient.op('resync');
    const synced = await bobClient.op('synced');
    expect(bobClient.messages.map((m) => m['id'])).toEqual([staying.id]);
    bobClient.close();
    await bobClient.closed();
    // Resuming from where that left off is a plain resume: the lost entry is behind it.
    const again = await connect(g1, bob);
    again.send({ op: 'resume', epoch: synced['epoch'], offset: synced['offset'] });
    await again.op('synced');
    expect(again.frames.some((f) => f.op === 'resync')).toBe(false);
  });

  it('logging out, or removing the device, closes its open connection with 4401', async () => {
    const alice = await person(call, 2);
    const first = await online(g1, alice, alice.devices[0]);
    const second = await online(g2, alice, alice.devices[1]);
    expect((await call('DELETE', `/v1/devices/${alice.devices[1]}`, { token: alice.token })).status).toBeLessThan(300);
    expect(await second.closed()).toBe(4401);
    expect(second.closeReason).toMatch(/removed/);
    expect((await call('POST', '/v1/auth/logout', { token: alice.token, body: {} })).status).toBeLessThan(300);
    expect(await first.closed()).toBe(4401);
  });

  it('one live connection per device: connecting again elsewhere closes the first with 4409', async () => {
    const alice = await person(call);
    const first = await online(g1, alice);
    await online(g2, alice);
    expect(await first.closed()).toBe(4409);
  });

  it('a blocked sender is refused with blocked; typing and signal reach the peer device and are never stored', async () => {
    const alice = await person(call);
    const bob = await person(call);
    const carol = await person(call);
    expect((await call('PUT', `/v1/blocks/${carol.userId}`, { token: bob.token })).status).toBeLessThan(300);
    const carolClient = await online(g1, carol);
    expect(await carolClient.request(directSend(bob.userId, bob.devices))).toMatchObject({ op: 'error', code: 'blocked' });

    const aliceClient = await online(g1, alice);
    const bobClient = await online(g2, bob);
    const before = (await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream)).state.last_seq;
    aliceClient.send({ op: 'typing', to: { user: bob.userId }, state: 'start' });
    await bobClient.op('typing', (f) => (f['from'] as { user: string }).user === alice.userId);
    aliceClient.send({ op: 'signal', to: { user: bob.userId, device: bob.devices[0] }, data: { sdp: 'offer' } });
    expect(await bobClient.op('signal')).toMatchObject({ from: { user: alice.userId }, data: { sdp: 'offer' } });
    expect((await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream)).state.last_seq).toBe(before);
  });

  it('presence: contacts see online and offline; a non-contact sees nothing when the setting says contacts', async () => {
    const alice = await person(call);
    const friend = await person(call);
    const stranger = await person(call);
    expect((await call('PUT', `/v1/contacts/${friend.userId}`, { token: alice.token })).status).toBeLessThan(300);
    const friendClient = await online(g1, friend);
    const strangerClient = await online(g2, stranger);
    friendClient.send({ op: 'presence.watch', users: [alice.userId] });
    strangerClient.send({ op: 'presence.watch', users: [alice.userId] });
    await friendClient.op('presence', (f) => f['state'] === 'offline');
    const aliceClient = await online(g2, alice);
    await friendClient.op('presence', (f) => f['state'] === 'online');
    aliceClient.close();
    const offline = await friendClient.next((f) => f.op === 'presence' && f['state'] === 'offline' && f['lastSeen'] !== null);
    expect(offline['lastSeen']).toBeGreaterThan(Date.now() - 10_000);
    expect(strangerClient.frames.filter((f) => f.op === 'presence')).toEqual([]);
  });

  it('a group message is stored once and reaches every other member on both gateways, not the sender', async () => {
    const [alice, bob, carol] = await Promise.all([person(call), person(call), person(call)]);
    const created = await call<{ groupId: string }>('POST', '/v1/groups', { token: alice.token, body: { name: 'team', members: [bob.userId, carol.userId] } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const group = created.body.groupId;
    const aliceClient = await online(g1, alice);
    const bobClient = await online(g1, bob);
    const carolClient = await online(g2, carol);
    const before = (await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream)).state.last_seq;
    const id = randomUUID();
    expect(await aliceClient.request({ op: 'send', id, to: { group }, type: 3, body: 'c2VuZGVyIGtleQ==' })).toMatchObject({ op: 'sent' });
    expect((await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream)).state.last_seq).toBe(before + 1);
    const [b, c] = await Promise.all([bobClient.op('msg', (f) => f['id'] === id), carolClient.op('msg', (f) => f['id'] === id)]);
    expect(b).toEqual(c);
    expect(b).toMatchObject({ group, from: { user: alice.userId }, body: 'c2VuZGVyIGtleQ==' });
    aliceClient.send({ op: 'typing', to: { group }, state: 'start' });
    expect(await carolClient.op('typing')).toMatchObject({ group, from: { user: alice.userId } });
    await bobClient.op('typing');
    await new Promise((r) => setTimeout(r, 100));
    // The sender sees neither its own message nor its own typing.
    expect(aliceClient.frames.filter((f) => f.op === 'msg' || f.op === 'typing')).toEqual([]);
    // A non-member may not send to the group.
    const outsider = await person(call);
    const outsiderClient = await online(g2, outsider);
    expect(await outsiderClient.request({ op: 'send', id: randomUUID(), to: { group }, type: 3, body: 'AAAA' })).toMatchObject({ op: 'error', code: 'not_member' });

    // Membership changes reach sockets already connected: the outsider is added, Bob removed.
    expect((await call('PUT', `/v1/groups/${group}/members/${outsider.userId}`, { token: alice.token })).status).toBeLessThan(300);
    expect((await call('DELETE', `/v1/groups/${group}/members/${bob.userId}`, { token: alice.token })).status).toBeLessThan(300);
    const next = randomUUID();
    await eventually(async () => (await aliceClient.request({ op: 'send', id: next, to: { group }, type: 3, body: 'bmV4dA==' })).op === 'sent');
    await outsiderClient.op('msg', (f) => f['id'] === next);
    await carolClient.op('msg', (f) => f['id'] === next);
    await new Promise((r) => setTimeout(r, 100));
    expect(bobClient.frames.some((f) => f['id'] === next)).toBe(false);
  });

  it('a message to a device with no live connection records the push hook event', async () => {
    const alice = await person(call);
    const bob = await person(call);
    const aliceClient = await online(g1, alice);
    const frame = directSend(bob.userId, bob.devices);
    await aliceClient.request(frame);
    const queued = await eventually(async () => {
      const events = await trafficOf(bob.devices[0] ?? '');
      return events.find((e) => e.type === 'messaging.OfflineMessageQueued');
    });
    expect(queued.data).toMatchObject({ messageId: frame.id, recipientUserId: bob.userId, recipientDeviceId: bob.devices[0] });
    expect(JSON.stringify(queued.data)).not.toContain(frame.messages[0]?.body);
  });

  describe('with tight limits', () => {
    let tight: RunningGateway;
    beforeAll(async () => {
      const messaging = { ...env.rt.config.messaging, sendsPerSecond: 5, maxBackpressureBytes: 16 * 1024, pairSendsPerMinute: 10_000, maxFrameBytes: 4096 };
      tight = await startGateway({ ...env.rt, config: { ...env.rt.config, messaging } }, { host: '127.0.0.1', port: 0 });
    });
    afterAll(() => tight?.close());

    it('sends past the rate are refused with rate_limited, and a client that keeps going is closed with 4429', async () => {
      const alice = await person(call);
      const bob = await person(call);
      const c = await online(tight, alice);
      for (let i = 0; i < 40; i++) c.send(directSend(bob.userId, bob.devices));
      const refused = await c.op('error', (f) => f['code'] === 'rate_limited');
      expect(typeof refused['id']).toBe('string');
      expect(await c.closed()).toBe(4429);
      expect(c.frames.filter((f) => f.op === 'sent').length).toBeLessThanOrEqual(6);
    });

    it('a frame over the frame limit is answered with too_large, then the connection is closed with 1009', async () => {
      const alice = await person(call);
      const c = await online(tight, alice);
      c.send({ op: 'send', id: 'big', to: { group: 'g' }, type: 1, body: Buffer.alloc(6000).toString('base64') });
      expect(await c.op('error')).toMatchObject({ code: 'too_large', limit: 4096 });
      expect(await c.closed()).toBe(1009);
    });

    it('a device that does not read is closed with 4008, and on reconnecting gets every message it missed', { timeout: 60_000 }, async () => {
      const alice = await person(call);
      const bob = await person(call);
      const sender = await online(g1, alice);
      const slow = await online(tight, bob);
      (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
      const body = Buffer.alloc(60 * 1024, 7).toString('base64');
      const ids: string[] = [];
      // Enough to fill the kernel's socket buffers on both sides (several MB on loopback) and then the gateway's 16 KB allowance;
      // paced under the sender's own rate limit.
      const tooSlow = async () => ((await env.rt.metrics.gatewayDisconnects.get()).values.find((v) => v.labels['code'] === '4008')?.value ?? 0) > 0;
      for (let i = 0; i < 200 && !(await tooSlow()); i++) {
        const frame = directSend(bob.userId, bob.devices, randomUUID());
        frame.messages = frame.messages.map((m) => ({ ...m, body }));
        ids.push(frame.id);
        expect((await sender.request(frame)).op).toBe('sent');
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(await tooSlow()).toBe(true);
      // It reads again: what was buffered, then the close frame.
      (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
      expect(await slow.closed(15_000)).toBe(4008);
      const again = await online(g2, bob);
      await eventually(() => ids.every((id) => again.seen.has(id) || slow.seen.has(id)), 15_000);
      expect(ids.filter((id) => !again.seen.has(id))).toEqual([]);
    });
  });

  it('bad frames get error frames with stable codes and change nothing', async () => {
    const alice = await person(call);
    const c = await online(g1, alice);
    c.send({ op: 'send', id: 'x y', to: { user: 'u' }, messages: [] });
    expect(await c.op('error')).toMatchObject({ code: 'invalid_field', field: 'id' });
    c.ws.send('{nope');
    await c.op('error', (f) => f['code'] === 'bad_frame');
    c.send({ op: 'send', id: 'big', to: { user: alice.userId }, messages: [{ device: 'd', type: 1, body: Buffer.alloc(70 * 1024).toString('base64') }] });
    expect(await c.op('error', (f) => f['id'] === 'big')).toMatchObject({ code: 'too_large' });
    c.send({ op: 'resume', epoch: '', offset: 0 });
    await c.op('error', (f) => f['code'] === 'already_resumed');
  });
});
