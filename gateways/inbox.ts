/**
 * The inbox stream: where ciphertext waits until the device acknowledges it.
 * An entry's offset is its stream sequence, so it is monotonic for every
 * device and shared by all members of a group (one stored copy, one identical
 * frame). The epoch names the stream's incarnation: if the stream is ever
 * recreated, offsets restart and clients holding the old epoch must resync.
 */
import { JetStreamApiError } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { Nats } from '../infra/nats/connection.js';
import type { Names } from '../infra/naming.js';

/** What is stored per entry: the `msg` frame without op, epoch and offset. */
export interface StoredMessage {
  id: string;
  from: { user: string; device: string };
  group?: string;
  type: number;
  body: string;
  ts: number;
  /** A disappearing message's ttl in seconds: it is removed this long after `ts`, delivered or not. */
  ttl?: number;
}

export interface HeldEntry {
  offset: number;
  /** The stored JSON, kept as text so a frame is built without re-serialising. */
  json: string;
}

export interface EntryToStore {
  subject: string;
  /** Nats-Msg-Id: a resend of the same message is stored once. */
  dedupId: string;
  message: StoredMessage;
}

/** `{"op":"msg","epoch":…,"offset":…,` + the stored fields: one string concatenation per delivery. */
export function msgFrame(epoch: string, entry: HeldEntry): string {
  return `{"op":"msg","epoch":"${epoch}","offset":${entry.offset},${entry.json.slice(1)}`;
}

export class Inbox {
  private epochValue: string | undefined;

  constructor(
    private readonly nats: Nats,
    private readonly names: Names,
  ) {}

  get stream(): string {
    return this.names.inboxStream;
  }

  /** The stream's creation time in base 36: changes only if the stream is recreated. */
  async epoch(): Promise<string> {
    if (!this.epochValue) {
      const info = await this.nats.jsm.streams.info(this.stream);
      this.epochValue = Date.parse(info.created).toString(36);
    }
    return this.epochValue;
  }

  /** Stores every entry (in parallel) and returns their offsets in the same order; throws if any failed. */
  async store(entries: readonly EntryToStore[]): Promise<HeldEntry[]> {
    return Promise.all(
      entries.map(async ({ subject, dedupId, message }) => {
        const json = JSON.stringify(message);
        const h = natsHeaders();
        h.set('content-type', 'application/json');
        const ack = await this.nats.js.publish(subject, json, { msgID: dedupId, headers: h });
        return { offset: ack.seq, json };
      }),
    );
  }

  /** The last offset the stream has assigned (0 when empty). */
  async lastOffset(): Promise<number> {
    const info = await this.nats.jsm.streams.info(this.stream);
    return info.state.last_seq;
  }

  /**
   * Every entry still held on `subject` with an offset of at least `fromOffset`
   * (and stored at or after `since`, for group members), in order. Reads up to
   * the subject's last entry at the time of the call; later ones arrive live.
   */
  async held(subject: string, fromOffset: number, since?: Date): Promise<HeldEntry[]> {
    const last = await this.nats.jsm.direct.getMessage(this.stream, { last_by_subj: subject });
    if (!last || last.seq < fromOffset) return [];
    const start = since ? { deliver_policy: 'by_start_time' as const, opt_start_time: since.toISOString() } : { opt_start_seq: Math.max(1, fromOffset) };
    const consumer = await this.nats.js.consumers.get(this.stream, { filter_subjects: subject, ...start });
    const messages = await consumer.consume({ max_messages: 512 });
    const entries: HeldEntry[] = [];
    try {
      for await (const msg of messages) {
        if (msg.seq >= fromOffset) entries.push({ offset: msg.seq, json: msg.string() });
        if (msg.seq >= last.seq) break;
      }
    } finally {
      await messages.close();
    }
    return entries;
  }

  /** Deletes one entry; false when it was already gone (acknowledged or expired before). */
  async delete(offset: number): Promise<boolean> {
    try {
      return await this.nats.jsm.streams.deleteMessage(this.stream, offset, false);
    } catch (err) {
      if (err instanceof JetStreamApiError && /no message found/i.test(err.message)) return false;
      throw err;
    }
  }
}
