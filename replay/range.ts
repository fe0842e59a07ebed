/**
 * Ranges of a stream, as analysts and auditors name them: `--from`/`--to` as a
 * stream sequence or an ISO time, resolved against the stream itself, and a
 * reader that walks the range in order through an ordered consumer.
 */
import { AckPolicy, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { Nats } from '../infra/nats/connection.js';

/** A bad argument: the CLI prints the message as one line and exits 2. */
export class ReplayArgumentError extends Error {
  readonly code = 'bad_argument';
}

export type Bound = { seq: number } | { time: Date };

/** `--from 42` or `--from 2026-11-24T10:00:00Z`; names the flag when it is neither. */
export function parseBound(flag: string, raw: string | undefined): Bound | undefined {
  if (raw === undefined) return undefined;
  if (/^\d{1,15}$/.test(raw)) {
    const seq = Number(raw);
    if (seq < 1) throw new ReplayArgumentError(`${flag}: sequences start at 1`);
    return { seq };
  }
  const time = new Date(raw);
  if (!/^\d{4}-\d{2}-\d{2}/.test(raw) || Number.isNaN(time.getTime())) throw new ReplayArgumentError(`${flag}: "${raw}" is neither a stream sequence nor an ISO time`);
  return { time };
}

export interface SeqRange {
  stream: string;
  /** First sequence, inclusive. */
  from: number;
  /** Last sequence, inclusive; from > to means an empty range. */
  to: number;
}

/** The stream's info, or a one-line error naming the stream. */
export async function streamInfo(nats: Nats, stream: string) {
  try {
    return await nats.jsm.streams.info(stream);
  } catch (err) {
    if ((err as { code?: unknown }).code === 404 || /not found/i.test((err as Error).message)) {
      const known: string[] = [];
      for await (const name of nats.jsm.streams.names()) known.push(name);
      throw new ReplayArgumentError(`--stream: no stream "${stream}" (streams: ${known.sort().join(', ') || 'none'})`);
    }
    throw err;
  }
}

/** Resolves time bounds to sequences with direct gets (the first message at or after the time). */
export async function resolveRange(nats: Nats, stream: string, from?: Bound, to?: Bound): Promise<SeqRange> {
  const info = await streamInfo(nats, stream);
  const first = info.state.first_seq;
  const last = info.state.last_seq;
  const atOrAfter = async (time: Date): Promise<number> => {
    const msg = await nats.jsm.direct.getMessage(stream, { start_time: time });
    return msg?.seq ?? last + 1;
  };
  const fromSeq = from === undefined ? first : 'seq' in from ? Math.max(from.seq, first) : await atOrAfter(from.time);
  // A time `to` is inclusive: everything stored up to and including that instant.
  const toSeq = to === undefined ? last : 'seq' in to ? Math.min(to.seq, last) : (await atOrAfter(new Date(to.time.getTime() + 1))) - 1;
  if (from && to) {
    const fromKey = 'seq' in from ? from.seq : from.time.getTime();
    const toKey = 'seq' in to ? to.seq : to.time.getTime();
    if (('seq' in from) === ('seq' in to) && fromKey > toKey) throw new ReplayArgumentError('--from: must not be after --to');
  }
  return { stream, from: fromSeq, to: toSeq };
}

/**
 * Calls `onMessage` for every message of the range (optionally filtered to one
 * subject pattern), in stream order, and resolves after the last one.
 */
export async function readRange(
  nats: Nats,
  range: SeqRange,
  onMessage: (msg: JsMsg) => void | Promise<void>,
  opts: { filter?: string; batch?: number } = {},
): Promise<number> {
  if (range.from > range.to) return 0;
  // A consumer with nothing to deliver would wait forever: count what it would get first
  // (a throwaway consumer's pending count works on every stream, direct gets only with allow_direct).
  if ((await pendingFrom(nats, range.stream, range.from, opts.filter)) === 0) return 0;
  const consumer = await nats.js.consumers.get(range.stream, {
    opt_start_seq: range.from,
    ...(opts.filter ? { filter_subjects: opts.filter } : {}),
  });
  const messages = await consumer.consume({ max_messages: opts.batch ?? 1024 });
  let count = 0;
  try {
    for await (const msg of messages) {
      if (msg.seq > range.to) break;
      await onMessage(msg);
      count++;
      if (msg.seq >= range.to || msg.info.pending === 0) break;
    }
  } finally {
    await messages.close();
  }
  return count;
}

/** Messages (of the filter) from `from` to the end of the stream. */
async function pendingFrom(nats: Nats, stream: string, from: number, filter?: string): Promise<number> {
  const info = await nats.jsm.consumers.add(stream, {
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.StartSequence,
    opt_start_seq: from,
    inactive_threshold: 30_000_000_000,
    ...(filter ? { filter_subject: filter } : {}),
  });
  await nats.jsm.consumers.delete(stream, info.name).catch(() => undefined);
  return info.num_pending;
}
