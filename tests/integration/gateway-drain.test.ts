/**
 * Two gateway processes, real NATS, Redis and Postgres. One is stopped with
 * SIGTERM while messages flow through it: it stops accepting, tells its
 * clients `{"op":"reconnect"}`, answers every send it was given (`sent`, or
 * `draining` for one that came after), closes with 1012 and exits 0. Clients
 * move to the other gateway and resume: every acknowledged message arrives
 * exactly once, in per-sender order, and no send went unanswered.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../support/isolated.js';
import { directSend, person, WsClient, type Call, type Frame, type TestPerson } from '../support/messenger.js';
import { twoGateways, type GatewayProcess, type TwoGateways } from '../support/two-gateways.js';

const MESSAGES_PER_SENDER = 40;

/** What a client saw of its gateway going away. */
interface Departure {
  reconnectFrame: boolean;
  closeCode: number | undefined;
}

const departure = (c: WsClient): Departure => ({ reconnectFrame: c.frames.some((f) => f.op === 'reconnect' && f['reason'] === 'draining'), closeCode: c.closeCode });

class Receiver {
  client!: WsClient;
  readonly departures: Departure[] = [];
  private acked = { epoch: '', offset: 0 };

  constructor(readonly who: TestPerson) {}

  get messages(): Frame[] {
    return this.client.messages;
  }

  async connect(url: string, seen: WsClient | undefined = undefined): Promise<void> {
    const next = await WsClient.connect(url, this.who.token, this.who.devices[0] ?? '');
    // Dedup across connections, as a real client does with its own store.
    for (const id of seen?.seen ?? []) next.seen.add(id);
    next.messages.push(...(seen?.messages ?? []));
    this.client = next;
    next.ws.on('message', (data) => {
      const frame = JSON.parse((data as Buffer).toString('utf8')) as Frame;
      if (frame.op === 'msg') {
        next.send({ op: 'ack', upTo: frame['offset'] });
        this.acked = { epoch: String(frame['epoch']), offset: Number(frame['offset']) };
      }
    });
    next.send({ op: 'resume', ...this.acked });
    await next.op('synced');
  }

  /** When the gateway says so: reconnect elsewhere and resume from the last ack. */
  async follow(url: string): Promise<void> {
    const old = this.client;
    await old.closed(10_000);
    this.departures.push(departure(old));
    await this.connect(url, old);
  }
}

class Sender {
  client!: WsClient;
  readonly acknowledged: string[] = [];
  readonly departures: Departure[] = [];
  /** Sends the gateway never answered (cut off rather than drained). */
  unanswered = 0;
  drainingRefusals = 0;

  constructor(readonly who: TestPerson) {}

  async run(url: () => string, to: TestPerson): Promise<void> {
    this.client = await WsClient.connect(url(), this.who.token, this.who.devices[0] ?? '');
    for (let i = 0; i < MESSAGES_PER_SENDER; i++) {
      const frame = directSend(to.userId, to.devices, randomUUID());
      for (;;) {
        if (!this.client.frames.some((f) => f.op === 'reconnect')) {
          try {
            const answer = await this.client.request(frame, 5_000);
            if (answer.op === 'sent') break;
            expect(answer['code']).toBe('draining');
            this.drainingRefusals++;
          } catch {
            this.unanswered++;
          }
        }
        // Told to go (or refused while draining): the same id on another gateway.
        await this.client.closed(10_000).catch(() => this.client.close());
        this.departures.push(departure(this.client));
        this.client = await WsClient.connect(url(), this.who.token, this.who.devices[0] ?? '');
      }
      this.acknowledged.push(frame.id);
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

describe('gateway drained with SIGTERM while messages flow', () => {
  let stack: TwoGateways;
  let call: Call;
  let survivor: GatewayProcess;
  let victim: GatewayProcess;

  beforeAll(async () => {
    stack = await twoGateways();
    ({ call, survivor, victim } = stack);
  }, 60_000);
  afterAll(() => stack?.close());

  it('clients are told to reconnect, every send is answered, nothing is lost or doubled, the gateway exits 0', async () => {
    const [alice, bob, carol, dave] = await Promise.all([0, 1, 2, 3].map(() => person(call)));
    if (!alice || !bob || !carol || !dave) throw new Error('people');
    let victimAlive = true;
    // Alice sends through the victim, Bob through the survivor; Carol receives on the victim, Dave on the survivor.
    const carolReceives = new Receiver(carol);
    const daveReceives = new Receiver(dave);
    await carolReceives.connect(victim.url);
    await daveReceives.connect(survivor.url);
    const aliceSends = new Sender(alice);
    const bobSends = new Sender(bob);
    const flow = Promise.all([aliceSends.run(() => (victimAlive ? victim.url : survivor.url), carol), bobSends.run(() => survivor.url, carol)]);
    await eventually(() => carolReceives.messages.length >= 10, 15_000);

    const exited = new Promise<number | null>((resolve) => victim.child.once('exit', (code) => resolve(code)));
    victimAlive = false;
    victim.child.kill('SIGTERM');
    await carolReceives.follow(survivor.url);
    expect(await exited).toBe(0);
    await flow;

    const expected = [...aliceSends.acknowledged, ...bobSends.acknowledged];
    await eventually(() => expected.every((id) => carolReceives.messages.some((m) => m['id'] === id)), 15_000);
    const ids = carolReceives.messages.map((m) => String(m['id']));
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual([...expected].sort());
    for (const sender of [aliceSends, bobSends]) {
      const fromSender = carolReceives.messages.filter((m) => (m['from'] as { user: string }).user === sender.who.userId).map((m) => m['id']);
      expect(fromSender).toEqual(sender.acknowledged);
    }
    // Drained, not cut: both of the victim's clients were told, then closed with 1012; no send was left unanswered.
    expect(carolReceives.departures).toEqual([{ reconnectFrame: true, closeCode: 1012 }]);
    expect(aliceSends.departures).toEqual([{ reconnectFrame: true, closeCode: 1012 }]);
    expect(aliceSends.unanswered).toBe(0);
    expect(bobSends.departures).toEqual([]);
    expect(daveReceives.client.closeCode).toBeUndefined();
    for (const c of [aliceSends.client, bobSends.client, carolReceives.client, daveReceives.client]) c.close();
  }, 120_000);
});
