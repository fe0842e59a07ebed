/**
 * `send`: check the sender may send and addressed every device, store the
 * ciphertext in the inbox, answer `sent` only once JetStream has it, then hand
 * it to the recipients' gateways over core NATS. A resend of the same id is
 * answered with the first answer and stored once.
 */
import type { Redis } from 'ioredis';
import type { Nats } from '../infra/nats/connection.js';
import type { Names } from '../infra/naming.js';
import type { Metrics } from '../infra/metrics.js';
import type { Connection } from './connection.js';
import type { Directory } from './directory.js';
import type { InboxExpiry, Scheduled } from './expiry.js';
import type { EntryToStore, HeldEntry, Inbox, StoredMessage } from './inbox.js';
import { KeyedBuckets } from './limits.js';
import type { MessageEvents } from './message-events.js';
import type { Presence } from './presence.js';
import { FrameError, isGroupSend, type DirectSend, type GroupSend, type SendFrame } from './protocol.js';
import { live } from './live-frames.js';

export interface SendingDeps {
  nats: Nats;
  names: Names;
  redis: Redis;
  inbox: Inbox;
  expiry: InboxExpiry;
  directory: Directory;
  presence: Presence;
  events: MessageEvents;
  metrics: Metrics;
  pairSendsPerMinute: number;
  /** How long a message id is remembered for answering resends (the inbox retention). */
  idMemorySeconds: number;
}

/** One stored inbox entry: its size, and its expiry to schedule. */
interface Stored {
  bytes: number;
  scheduled: Scheduled;
}

function difference(a: readonly string[], b: ReadonlySet<string>): string[] {
  return a.filter((x) => !b.has(x)).sort();
}

export class Sending {
  private readonly pairs: KeyedBuckets;

  constructor(private readonly d: SendingDeps) {
    this.pairs = new KeyedBuckets(d.pairSendsPerMinute, 60_000);
  }

  private sentKey(user: string, id: string): string {
    return `${this.d.names.namespace}:sent:${user}:${id}`;
  }

  /** Handles one send; returns the `sent` frame, or throws FrameError. */
  async send(conn: Connection, frame: SendFrame): Promise<string> {
    const kind = 'group' in frame.to ? 'group' : 'direct';
    const target = 'group' in frame.to ? `g:${frame.to.group}` : `u:${frame.to.user}`;
    if (!this.pairs.take(`${conn.userId}>${target}`)) {
      throw new FrameError('rate_limited', `too many messages to ${target}: slow down`, { retryAfterMs: Math.ceil(60_000 / this.d.pairSendsPerMinute) });
    }
    const previous = await this.d.redis.get(this.sentKey(conn.userId, frame.id));
    if (previous !== null) {
      this.d.metrics.gatewaySends.inc({ kind, outcome: 'duplicate' });
      return sentFrame(frame.id, Number(previous));
    }
    const ts = Date.now();
    const from = { user: conn.userId, device: conn.deviceId };
    const stored = isGroupSend(frame) ? await this.storeGroup(conn, frame, frame.to.group, ts) : await this.storeDirect(conn, frame, frame.to.user, ts);
    // Before `sent`, in one round trip: the entries' expiry (a disappearing message must vanish even if this process dies next) and the id, for resends.
    const pipeline = this.d.expiry.schedule(this.d.redis.multi(), stored.map((s) => s.scheduled));
    await pipeline.set(this.sentKey(conn.userId, frame.id), String(ts), 'EX', this.d.idMemorySeconds).exec();
    this.d.metrics.gatewaySends.inc({ kind, outcome: 'stored' });
    this.d.events.record([
        {
          type: 'messaging.MessageSent',
          data: {
            messageId: frame.id,
            senderUserId: from.user,
            senderDeviceId: from.device,
            recipientUserId: 'user' in frame.to ? frame.to.user : null,
            groupId: 'group' in frame.to ? frame.to.group : null,
            deviceCount: stored.length,
            bytes: BigInt(stored.reduce((n, s) => n + s.bytes, 0)),
            ttlSeconds: frame.ttl ?? null,
            sentAt: new Date(ts),
          },
        },
    ]);
    return sentFrame(frame.id, ts);
  }

  /** Stores one entry per addressed device and hands each to the live path; answers what to schedule for expiry. */
  private async storeDirect(conn: Connection, frame: DirectSend, recipient: string, ts: number): Promise<Stored[]> {
    let view = await this.d.directory.conversation(conn.userId, recipient);
    const addressed = new Set(frame.messages.map((m) => m.device));
    const expected = () => new Set([...view.recipientDevices, ...view.senderDevices.filter((d) => d !== conn.deviceId)]);
    const mismatch = () => {
      const want = expected();
      return { missing: difference([...want], addressed), extra: difference([...addressed], want) };
    };
    let diff = mismatch();
    if (diff.missing.length + diff.extra.length > 0 || !view.recipientExists) {
      // The cache may be a second old: ask again before telling the client it is wrong.
      view = await this.d.directory.conversation(conn.userId, recipient, true);
      diff = mismatch();
    }
    if (!view.recipientExists) throw new FrameError('unknown_user', `no user ${recipient}`);
    if (view.blocked) throw new FrameError('blocked', 'the recipient does not accept your messages');
    if (diff.missing.length + diff.extra.length > 0) throw new FrameError('devices_mismatch', 'address exactly the recipient\'s devices and your other devices', diff);

    const owners = new Map<string, string>();
    for (const d of view.recipientDevices) owners.set(d, recipient);
    for (const d of view.senderDevices) owners.set(d, conn.userId);
    const entries: EntryToStore[] = frame.messages.map((m) => ({
      subject: this.d.names.inboxDevice(m.device),
      dedupId: `${conn.userId}:${frame.id}:${m.device}`,
      message: { id: frame.id, from: { user: conn.userId, device: conn.deviceId }, type: m.type, body: m.body, ts, ...ttlOf(frame) } satisfies StoredMessage,
    }));
    const held = await this.d.inbox.store(entries);
    const deadline = this.d.expiry.deadline(ts, frame.ttl);
    for (const [i, h] of held.entries()) {
      const device = frame.messages[i]?.device ?? '';
      this.d.nats.nc.publish(this.d.names.liveUser(owners.get(device) ?? recipient), live.message(device, h));
    }
    void this.queueOffline(conn, frame.id, frame.messages.map((m) => ({ device: m.device, user: owners.get(m.device) ?? recipient })));
    return held.map((h, i) => ({ bytes: h.json.length, scheduled: { offset: h.offset, messageId: frame.id, holder: frame.messages[i]?.device ?? '', ...deadline } }));
  }

  private async storeGroup(conn: Connection, frame: GroupSend, group: string, ts: number): Promise<Stored[]> {
    if (!(await this.d.directory.isMember(group, conn.userId))) throw new FrameError('not_member', `you are not a member of group ${group}`);
    const [held] = (await this.d.inbox.store([
      {
        subject: this.d.names.inboxGroup(group),
        dedupId: `${conn.userId}:${frame.id}:group`,
        message: { id: frame.id, from: { user: conn.userId, device: conn.deviceId }, group, type: frame.type, body: frame.body, ts, ...ttlOf(frame) },
      },
    ])) as [HeldEntry];
    this.d.nats.nc.publish(this.d.names.liveGroup(group), live.groupMessage(conn.deviceId, held));
    return [{ bytes: held.json.length, scheduled: { offset: held.offset, messageId: frame.id, holder: `group:${group}`, ...this.d.expiry.deadline(ts, frame.ttl) } }];
  }

  /** The push hook: one event per addressed device that has no live connection anywhere. */
  private async queueOffline(conn: Connection, messageId: string, targets: { device: string; user: string }[]): Promise<void> {
    try {
      const online = await this.d.presence.onlineDevices(targets.map((t) => t.device));
      const queuedAt = new Date();
      for (const t of targets) {
        if (online.has(t.device)) continue;
        this.d.events.record([{ type: 'messaging.OfflineMessageQueued', data: { messageId, recipientUserId: t.user, recipientDeviceId: t.device, queuedAt } }]);
      }
    } catch {
      // Presence unavailable: a push is a courtesy; the message itself is stored.
    }
  }
}

function ttlOf(frame: SendFrame): { ttl?: number } {
  return frame.ttl === undefined ? {} : { ttl: frame.ttl };
}

export function sentFrame(id: string, ts: number): string {
  return JSON.stringify({ op: 'sent', id, ts });
}
