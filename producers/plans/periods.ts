/**
 * Usage periods of a subscription, computed in the user's IANA time zone (pure functions, no I/O).
 *
 * The rules, as users see them:
 * - The first period starts at the anchor: the instant the subscription started. Every later
 *   period starts at a boundary; periods are half-open, [start, end), and follow each other with
 *   no gap (one period's end is the next one's start).
 * - Boundaries are local midnights in the user's time zone. Where a DST change skips midnight
 *   (America/Santiago, America/Havana, Asia/Beirut…), the boundary is the first instant of that
 *   day (01:00), never the day before; where midnight happens twice, the first one.
 *   - `day`: every local midnight. A day across a DST change lasts 23 or 25 hours.
 *   - `week`: the local midnight of the anchor's local weekday (anchored on a Tuesday 15:00 → every
 *     Tuesday 00:00).
 *   - `month`: the anniversary, the local midnight of the anchor's local day of the month, clamped
 *     to the month's last day. Clamping starts from the ORIGINAL day each month, so an anchor on
 *     Jan 31 resets on Feb 28 (Feb 29 in a leap year), then Mar 31, Apr 30, May 31 — never drifting
 *     to the 28th.
 *   - `calendar_month`: the local midnight of every 1st (the first period is the rest of the
 *     anchor's month).
 *   - `none`: one period from the anchor with no end (the subscription's own expiry ends it).
 * - Only the local date matters for boundaries: the anchor's local time of day only sets where
 *   the first period starts.
 *
 * `periodAt` is arithmetic (number of days or months between local dates), so asking for the
 * period ten years after the anchor costs the same as asking for the first one.
 */
import { Temporal } from '@js-temporal/polyfill';
import { DomainError } from '../decider.js';

export const RESET_STRATEGIES = ['none', 'day', 'week', 'month', 'calendar_month'] as const;
export type ResetStrategy = (typeof RESET_STRATEGIES)[number];

/** end null: strategy 'none' (one period until the subscription ends). */
export interface Period {
  start: Date;
  end: Date | null;
}

/**
 * Throws DomainError('invalid_time_zone', …, { field }) unless `timeZone` is a real IANA zone name;
 * returns its canonical spelling ('utc' → 'UTC', 'europe/berlin' → 'Europe/Berlin'). Offset
 * strings ('+01:00') are refused although Temporal accepts them: they are not zone names, and a
 * user who meant a place would see resets drift by an hour twice a year. The database's own
 * fixed-offset zones (`Etc/GMT+12`, `EST`) are real IANA names and are accepted as such.
 */
export function checkTimeZone(timeZone: string, field = 'timeZone'): string {
  const invalid = () =>
    new DomainError('invalid_time_zone', `${field}: must be an IANA time zone name such as Europe/Berlin or UTC`, { field });
  // Letters first: refuses offsets, and Temporal's leniency for whole date-time strings ('2020-01-01T00:00Z[Europe/Berlin]').
  if (typeof timeZone !== 'string' || !/^[A-Za-z][A-Za-z0-9_+\-/]*$/.test(timeZone)) throw invalid();
  try {
    return Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(timeZone).timeZoneId;
  } catch {
    throw invalid();
  }
}

/** The usage period that contains `at`, for a subscription that started at `anchor`. `at` >= anchor. */
export function periodAt(strategy: ResetStrategy, anchor: Date, timeZone: string, at: Date): Period {
  if (at.getTime() < anchor.getTime()) throw new RangeError(`periodAt: ${at.toISOString()} is before the anchor ${anchor.toISOString()}`);
  if (strategy === 'none') return { start: anchor, end: null };
  const calendar = calendarOf(strategy, zoned(anchor, timeZone).toPlainDate());
  const index = calendar.indexOf(zoned(at, timeZone).toPlainDate());
  return {
    start: index === 0 ? anchor : calendar.boundary(index, timeZone),
    end: calendar.boundary(index + 1, timeZone),
  };
}

/** The period right after `period` (whose end must be non-null). */
export function nextPeriod(strategy: ResetStrategy, anchor: Date, timeZone: string, period: Period): Period {
  if (period.end === null) throw new RangeError(`nextPeriod: a period without an end has no successor (strategy ${strategy})`);
  // The end is a boundary, so the period that contains it starts exactly there.
  return periodAt(strategy, anchor, timeZone, period.end);
}

/**
 * The period after `period`, when the user's zone changed from `fromZone` (the current period's)
 * to `toZone`. The next boundary is found in the zone the current period runs in, and its local
 * date then starts in the new zone: the period in which the change takes effect is one period
 * give or take the difference of the two offsets (at most 26 h), and every later one is a whole
 * period. Looking up the boundary in the new zone instead would let a user who moves west of the
 * old boundary start a fresh period, and a fresh allowance, hours after the last one.
 */
export function nextPeriodInZone(strategy: ResetStrategy, anchor: Date, fromZone: string, toZone: string, period: Period): Period {
  const next = nextPeriod(strategy, anchor, fromZone, period);
  if (next.end === null || fromZone === toZone) return next;
  return { start: next.start, end: startOfDay(zoned(next.end, fromZone).toPlainDate(), toZone) };
}

/**
 * `days` calendar days after `start`, at the same local wall-clock time in `timeZone` (a validity
 * of N days). Where that wall-clock time does not exist (inside a DST gap) it moves forward by the
 * gap, Temporal's 'compatible' disambiguation.
 */
export function addLocalDays(start: Date, days: number, timeZone: string): Date {
  if (!Number.isSafeInteger(days)) throw new RangeError(`addLocalDays: days must be a whole number, got ${days}`);
  return toDate(zoned(start, timeZone).add({ days }));
}

/**
 * `months` calendar months after `start` in `timeZone`, at the same local wall-clock time, on
 * local day `dayOfMonth` (default: start's) clamped to short months: paid months counted from one
 * anchor day keep Jan 31 → Feb 28 → Mar 31 instead of drifting to the 28th.
 */
export function addLocalMonths(start: Date, months: number, timeZone: string, dayOfMonth?: number): Date {
  if (!Number.isSafeInteger(months)) throw new RangeError(`addLocalMonths: months must be a whole number, got ${months}`);
  const from = zoned(start, timeZone);
  const month = from.with({ day: 1 }).add({ months });
  return toDate(month.with({ day: Math.min(dayOfMonth ?? from.day, month.daysInMonth) }));
}

/** The local day of the month of an instant: a billing anchor. */
export function localDayOfMonth(instant: Date, timeZone: string): number {
  return zoned(instant, timeZone).day;
}

/** The boundaries of one strategy, numbered from the anchor's local date: boundary 0 is at or before the anchor. */
interface BoundaryCalendar {
  /** The number of the last boundary on or before `date` (>= 0 for dates on or after the anchor's). */
  indexOf(date: Temporal.PlainDate): number;
  /** The instant of boundary `index` (its local date's first instant). */
  boundary(index: number, timeZone: string): Date;
}

function calendarOf(strategy: Exclude<ResetStrategy, 'none'>, anchorDate: Temporal.PlainDate): BoundaryCalendar {
  switch (strategy) {
    case 'day':
      return everyDays(anchorDate, 1);
    case 'week':
      return everyDays(anchorDate, 7);
    case 'month':
      return everyMonth(anchorDate, anchorDate.day);
    case 'calendar_month':
      return everyMonth(anchorDate.with({ day: 1 }), 1);
  }
}

function everyDays(anchorDate: Temporal.PlainDate, step: number): BoundaryCalendar {
  return {
    indexOf: (date) => Math.floor(anchorDate.until(date, { largestUnit: 'days' }).days / step),
    boundary: (index, timeZone) => startOfDay(anchorDate.add({ days: index * step }), timeZone),
  };
}

/** Boundaries on day `day` of every month from `first`'s month, clamped to short months' last day. */
function everyMonth(first: Temporal.PlainDate, day: number): BoundaryCalendar {
  // Adding months to the first month (not to the previous boundary) is what keeps Jan 31 → Feb 28 → Mar 31.
  const monthStart = first.with({ day: 1 });
  const on = (index: number) => {
    const month = monthStart.add({ months: index });
    return month.with({ day: Math.min(day, month.daysInMonth) });
  };
  return {
    indexOf: (date) => {
      const months = (date.year - first.year) * 12 + (date.month - first.month);
      return Temporal.PlainDate.compare(date, on(months)) < 0 ? months - 1 : months;
    },
    boundary: (index, timeZone) => startOfDay(on(index), timeZone),
  };
}

function zoned(instant: Date, timeZone: string): Temporal.ZonedDateTime {
  return Temporal.Instant.fromEpochMilliseconds(instant.getTime()).toZonedDateTimeISO(timeZone);
}

/** The first instant of a local date: midnight, or the end of the DST gap where midnight does not exist. */
function startOfDay(date: Temporal.PlainDate, timeZone: string): Date {
  return toDate(date.toZonedDateTime({ timeZone }));
}

function toDate(value: Temporal.ZonedDateTime): Date {
  return new Date(value.epochMilliseconds);
}
