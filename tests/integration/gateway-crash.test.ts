/**
 * Two gateway processes, real NATS, Redis and Postgres. One gateway is killed
 * with SIGKILL while messages flow both ways through it. Clients do what a
 * real client does: resend what was not answered `sent`, reconnect to the
 * surviving gateway, resume from what they acknowledged, dedup by id. Then
 * every device has every acknowledged message exactly once, in per-sender
 * order; and the dead gateway's users are offline within the presence TTL.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/isolated.js';
import { directSend, person, WsClient, type Call, type Frame, type TestPerson } from '../support/messenger.js';
import { twoGateways, type GatewayProcess, type TwoGateways } from '../support/two-gateways.js';

const MESSAGES_PER_SENDER = 60;
const PRESENCE_TTL_SECONDS = 3;

/** A receiving device that acks every few messages and, when its gateway dies, resumes elsewhere from its last ack. */
class Receiver {
  client!: WsClient;
  received: Frame[] = [];
  private seen = new Set<string>();
  private acked = { epoch: '', offset: 0 };

  constructor(readonly who: TestPerson) {}

  async connect(url: string): Promise<void> {
    this.client = await WsClient.connect(url, this.who.token, this.who.devices[0] ?? '');
    this.client.ws.on('message', (data) => {
      const frame = JSON.parse((data as Buffer).toString('utf8')) as Frame;
      if (frame.op !== 'msg') return;
      if (!this.seen.has(String(frame['id']))) {
        this.seen.add(String(frame['id']));
        this.received.push(frame);
      }
      if (this.received.length % 3 === 0) {
        this.client.send({ op: 'ack', upTo: frame['offset'] });
        this.acked = { epoch: String(frame['epoch']), offset: Number(frame['offset']) };
      }
    });
    this.client.send({ op: 'resume', ...this.acked });
    await this.client.op('synced');
  }
}

/** A sending device: one message at a time; on a dropped connection it reconnects and resends the unanswered one with the same id. */
class Sender {
  client!: WsClient;
  /** Ids answered `sent`, per recipient, in order. */
  readonly acknowledged = new Map<string, string[]>();
  /** Times it lost its gateway mid-send and resent elsewhere. */
  resends = 0;

  constructor(readonly who: TestPerson) {}

  async run(gatewayUrl: () => string, recipients: TestPerson[]): Promise<void> {
    this.client = await this.reconnect(gatewayUrl);
    for (let i = 0; i < MESSAGES_PER_SENDER; i++) {
      const to = recipients[i % recipients.length] as TestPerson;
      const frame = directSend(to.userId, to.devices, randomUUID());
      for (;;) {
        try {
          const answer = await this.client.request(frame, 3000);
          expect(answer.op).toBe('sent');
          break;
        } catch {
          // Not answered: the gateway is gone (or slow). Reconnect to a live one and send the same id again.
          this.client.close();
          this.resends++;
          this.client = await this.reconnect(gatewayUrl);
        }
      }
      this.acknowledged.set(to.userId, [...(this.acknowledged.get(to.userId) ?? []), frame.id]);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Connects to whichever gateway `url` names now, retrying while the dying one still refuses. */
  private async reconnect(url: () => string): Promise<WsClient> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await WsClient.connect(url(), this.who.token, this.who.devices[0] ?? '');
      } catch (err) {
        if (attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

describe('gateway killed with SIGKILL while messages flow', () => {
  let stack: TwoGateways;
  let call: Call;
  let survivor: GatewayProcess;
  let victim: GatewayProcess;

  beforeAll(async () => {
    stack = await twoGateways({ RG_PRESENCE_TTL: String(PRESENCE_TTL_SECONDS), RG_PRESENCE_OFFLINE_DEBOUNCE_MS: '100' });
    ({ call, survivor, victim } = stack);
  }, 60_000);
  afterAll(() => stack?.close());

  it('every acknowledged message arrives exactly once after dedup, in per-sender order; the dead gateway\'s users go offline within the TTL', async () => {
    const senders = await Promise.all([0, 1, 2, 3].map(() => person(call)));
    const recipients = await Promise.all([0, 1, 2, 3].map(() => person(call)));
    // A user connected only to the doomed gateway, who will not come back, lets the watcher see presence (a contact).
    const watcher = await person(call);
    const ghost = await person(call);
    expect((await call('PUT', `/v1/contacts/${watcher.userId}`, { token: ghost.token })).status).toBeLessThan(300);

    let victimAlive = true;
    const urlFor = (i: number) => () => (victimAlive && i % 2 === 1 ? victim.url : survivor.url);
    const receivers = recipients.map((r) => new Receiver(r));
    await Promise.all(receivers.map((r, i) => r.connect(urlFor(i)())));
    const watcherDevice = watcher.devices[0] ?? '';
    const watcherClient = await WsClient.connect(survivor.url, watcher.token, watcherDevice);
    await WsClient.connect(victim.url, ghost.token, ghost.devices[0] ?? '');
    watcherClient.send({ op: 'presence.watch', users: [ghost.userId] });
    await watcherClient.op('presence', (f) => f['state'] === 'online');

    const flow = Promise.all(senders.map((s) => new Sender(s)).map(async (sender, i) => (await sender.run(urlFor(i + 1), recipients), sender)));
    await eventually(() => receivers.every((r) => r.received.length >= 5), 15_000);
    const framesBeforeKill = watcherClient.frames.length;
    await victim.kill('SIGKILL');
    victimAlive = false;
    const killedAt = Date.now();

    // The victim's receivers see their connection drop and resume on the survivor.
    await Promise.all(
      receivers.map(async (r, i) => {
        if (i % 2 === 0) return;
        await r.client.closed(10_000);
        await r.connect(survivor.url);
      }),
    );
    // The ghost went offline without anyone announcing it: the victim's heartbeats stopped and its entry expired.
    await watcherClient.next((f) => f.op === 'presence' && f['state'] === 'offline' && f['user'] === ghost.userId, (PRESENCE_TTL_SECONDS + 3) * 1000, framesBeforeKill);
    expect(Date.now() - killedAt).toBeLessThan((PRESENCE_TTL_SECONDS + 3) * 1000);

    const done = await flow;
    // The kill happened mid-flow: senders on the victim lost it with a message unanswered.
    expect(done.reduce((n, s) => n + s.resends, 0)).toBeGreaterThan(0);
    for (const r of receivers) {
      const expected = done.flatMap((s) => s.acknowledged.get(r.who.userId) ?? []);
      await eventually(() => expected.every((id) => r.received.some((m) => m['id'] === id)), 15_000);
      const ids = r.received.map((m) => String(m['id']));
      expect(new Set(ids).size).toBe(ids.length);
      expect(ids.sort()).toEqual([...expected].sort());
      for (const s of done) {
        const fromSender = r.received.filter((m) => (m['from'] as { user: string }).user === s.who.userId).map((m) => m['id']);
        expect(fromSender).toEqual(s.acknowledged.get(r.who.userId) ?? []);
      }
    }
    for (const s of done) s.client.close();
    for (const r of receivers) r.client.close();
    watcherClient.close();
  }, 120_000);
});
