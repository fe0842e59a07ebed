/**
 * `--from`/`--to` to stream sequences. Sequence bounds go to resolveRange as
 * they are. Time bounds are found here by bisection over direct gets of stored
 * messages, because resolveRange asks the server with a direct get by
 * `start_time`, which needs nats-server 2.11 and fails on the 2.9 we run.
 * The meaning is the same: `--from T` is the first message stored at or after
 * T, `--to T` the last one stored at or before T (inclusive).
 */
import type { Nats } from '../../infra/nats/connection.js';
import { ReplayArgumentError, resolveRange, streamInfo, type Bound, type SeqRange } from '../range.js';

export interface ExportRange extends SeqRange {
  /** The stream's own subjects (empty for a stream that only sources others, like the audit stream). */
  subjects: string[];
}

type TimeBound = { time: Date };
const isTime = (b: Bound | undefined): b is TimeBound => b !== undefined && 'time' in b;

export async function resolveExportRange(nats: Nats, stream: string, from?: Bound, to?: Bound): Promise<ExportRange> {
  const info = await streamInfo(nats, stream);
  const subjects = info.config.subjects ?? [];
  if (!isTime(from) && !isTime(to)) return { ...(await resolveRange(nats, stream, from, to)), subjects };
  if (isTime(from) && isTime(to) && from.time.getTime() > to.time.getTime()) throw new ReplayArgumentError('--from: must not be after --to');
  const { first_seq: first, last_seq: last } = info.state;
  const fromSeq = from === undefined ? first : isTime(from) ? await firstStoredAtOrAfter(nats, stream, first, last, from.time) : from.seq;
  const toSeq =
    to === undefined ? last : isTime(to) ? (await firstStoredAtOrAfter(nats, stream, first, last, new Date(to.time.getTime() + 1))) - 1 : to.seq;
  // One bound a sequence, the other a time: the message named by number lies on the wrong side of the time.
  if (from !== undefined && to !== undefined && !(isTime(from) && isTime(to)) && fromSeq > toSeq) {
    throw new ReplayArgumentError('--from: must not be after --to');
  }
  return { stream, from: Math.max(fromSeq, first), to: Math.min(toSeq, last), subjects };
}

/**
 * The sequence of the first message stored at or after `time`, or last + 1.
 * Stored times grow with the sequence; gaps (deleted messages) are stepped
 * over with `next_by_subj: ">"`, which answers the next message that exists.
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
