/**
 * Bucket boundaries of an analytics range in the caller's IANA zone
 * (@js-temporal/polyfill): hours are UTC hours (every zone's hour boundaries
 * but those of half-hour offsets), days start at local midnight (23 or 25
 * hours long across a DST change), weeks on local Monday midnight (ISO weeks).
 * The boundaries go to Postgres as one array, so the zone rules are
 * Temporal's alone, not the database's.
 */
import { Temporal } from '@js-temporal/polyfill';

export type TrendGranularity = 'hour' | 'day' | 'week';

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** Boundaries b0 < b1 < … < bn: n buckets [b(i), b(i+1)) covering [from, to), whole buckets. */
export function bucketBounds(from: Date, to: Date, granularity: TrendGranularity, timeZone: string): Date[] {
  if (granularity === 'hour') {
    const bounds: Date[] = [];
    for (let at = Math.floor(from.getTime() / HOUR_MS) * HOUR_MS; ; at += HOUR_MS) {
      bounds.push(new Date(at));
      if (at >= to.getTime()) return bounds;
    }
  }
  let start = Temporal.Instant.fromEpochMilliseconds(from.getTime()).toZonedDateTimeISO(timeZone).startOfDay();
  if (granularity === 'week') start = start.subtract({ days: start.dayOfWeek - 1 }).startOfDay();
  const step = granularity === 'week' ? { weeks: 1 } : { days: 1 };
  const bounds: Date[] = [];
  for (let at = start; ; at = at.add(step).startOfDay()) {
    bounds.push(new Date(at.epochMilliseconds));
    if (at.epochMilliseconds >= to.getTime()) return bounds;
  }
}

/** Every boundary a UTC midnight: the daily read model answers these buckets exactly. */
export const alignedToUtcDays = (bounds: readonly Date[]): boolean => bounds.every((b) => b.getTime() % DAY_MS === 0);

/** The start of the calendar month holding `at` in `timeZone`, and the next one's. */
export function monthAround(at: Date, timeZone: string): { start: Date; end: Date } {
  const local = Temporal.Instant.fromEpochMilliseconds(at.getTime()).toZonedDateTimeISO(timeZone).startOfDay();
  const first = local.subtract({ days: local.day - 1 }).startOfDay();
  return { start: new Date(first.epochMilliseconds), end: new Date(first.add({ months: 1 }).startOfDay().epochMilliseconds) };
}
