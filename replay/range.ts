/**
 * Ranges of a stream, as analysts and auditors name them: `--from`/`--to` as a
 * stream sequence or an ISO time, resolved against the stream itself, and a
 * reader that walks the range in order through an ordered consumer.
 */
import { AckPolicy, DeliverPolicy, type JsMsg } from '@nats-io/jetstream';
import type { Nats } from '../infra/nats/connection.js';
import type { Names } from '../infra/naming.js';
import { CliError } from '../infra/cli/cli-error.js';

/** A bad argument: the CLI prints the message as one line and exits 2. */
export class ReplayArgumentError extends CliError {
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
  /** The stream's own subjects (none for a stream that only sources others, like the audit stream). */
  subjects?: string[];
}

/**
 * The server as one installation sees it: the connection, and the namespace
 * whose streams (`<NS>_…`) are its own.
 */
export interface NamespacedNats {
  nats: Nats;
  names: Pick<Names, 'upper'>;
}

/**
 * The stream's info, or a one-line error naming the stream and this
 * installation's streams to choose from. Only its own: the server may hold
 * other installations' and test runs' streams, which are neither a useful
 * suggestion nor this installation's business to list.
 */
export async function streamInfo(log: NamespacedNats, stream: string) {
  try {
    return await log.nats.jsm.streams.info(stream);
  } catch (err) {
    if ((err as { code?: unknown }).code === 404 || /not found/i.test((err as Error).message)) {
      const prefix = `${log.names.upper}_`;
      const known: string[] = [];
      for await (const name of log.nats.jsm.streams.names()) if (name.startsWith(prefix)) known.push(name);
      throw new ReplayArgumentError(`--stream: no stream "${stream}" (streams of namespace ${log.names.upper}: ${known.sort().join(', ') || 'none'})`);
    }
    throw err;
  }
}

/**
 * Resolves the bounds to sequences. `--from T` is the first message stored at
 * or after T, `--to T` the last one stored at or before T (inclusive).
 */
export async function resolveRange(log: NamespacedNats, stream: string, from?: Bound, to?: Bound): Promise<SeqRange> {
  const { nats } = log;
  const info = await streamInfo(log, stream);
  const { first_seq: first, last_seq: last } = info.state;
  const isTime = (b: Bound | undefined): b is { time: Date } => b !== undefined && 'time' in b;
  if (isTime(from) && isTime(to) && from.time.getTime() > to.time.getTime()) throw new ReplayArgumentError('--from: must not be after --to');
  if (from && to && !isTime(from) && !isTime(to) && from.seq > to.seq) throw new ReplayArgumentError('--from: must not be after --to');
  const fromSeq = from === undefined ? first : isTime(from) ? await firstStoredAtOrAfter(nats, stream, first, last, from.time) : from.seq;
  const toSeq = to === undefined ? last : isTime(to) ? (await firstStoredAtOrAfter(nats, stream, first, last, new Date(to.time.getTime() + 1))) - 1 : to.seq;
  // One bound a sequence, the other a time: the message named by number lies on the wrong side of the time.
  if (from !== undefined && to !== undefined && isTime(from) !== isTime(to) && fromSeq > toSeq) throw new ReplayArgumentError('--from: must not be after --to');
  // Sequences start at 1: an empty stream (first_seq 0) resolves to the empty range 1..0, not a consumer from 0.
  return { stream, from: Math.max(fromSeq, first, 1), to: Math.min(toSeq, last), subjects: info.config.subjects ?? [] };
}

/**
 * The sequence of the first message stored at or after `time`, or last + 1, by
 * bisection over direct gets (a direct get by `start_time` needs nats-server
 * 2.11). Stored times grow with the sequence; gaps (deleted messages) are
 * stepped over with `next_by_subj: ">"`, which answers the next message that exists.
 */
async function firstStoredAtOrAfter(nats: Nats, stream: string, first: number, last: number, time: Date): Promise<number> {
  if (last < first || first === 0) return last + 1;
  let lo = first;
  let hi = last + 1;
  let found = last + 1;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    const msg = await nats.jsm.direct.getMessage(stream, { seq: mid, next_by_subj: '>' });
    if (!msg) {
      hi = mid;
    } else if (msg.time.getTime() >= time.getTime()) {
      found = msg.seq;
      hi = mid;
    } else {
      lo = msg.seq + 1;
    }
  }
  return found;
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
      // Await only what is asynchronous: a tick per message is a large share of a fast callback's cost.
      const pending = onMessage(msg);
      if (pending) await pending;
      count++;
      if (msg.seq >= range.to || msg.info.pending === 0) break;
    }
  } finally {
    await messages.close();
  }
  return count;
}

/**
 * A whole stream, or the part between two sequences, in order. Reads what is
 * stored: a consumer delivers a message's headers as stored, where a direct
 * get would add its own (the audit leaf must not see those).
 */
export async function readStream(
  log: NamespacedNats,
  stream: string,
  onMessage: (msg: JsMsg) => void | Promise<void>,
  bounds: { from?: number; to?: number } = {},
): Promise<number> {
  const from = bounds.from === undefined ? undefined : { seq: bounds.from };
  const to = bounds.to === undefined ? undefined : { seq: bounds.to };
  return readRange(log.nats, await resolveRange(log, stream, from, to), onMessage);
}

/** Messages (of the filter) from `from` to the end of the stream. */
export async function pendingFrom(nats: Nats, stream: string, from: number, filter?: string): Promise<number> {
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
