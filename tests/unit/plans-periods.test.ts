/** Usage periods in the user's time zone: DST, short months, odd offsets, and periodAt against walking the periods one by one. */
import { Temporal } from '@js-temporal/polyfill';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../producers/decider.js';
import {
  addLocalDays,
  checkTimeZone,
  nextPeriod,
  periodAt,
  RESET_STRATEGIES,
  type Period,
  type ResetStrategy,
} from '../../producers/plans/periods.js';

const at = (iso: string) => new Date(iso);
/** A period as ISO strings, so that a failure reads as dates. */
const show = (period: Period) => ({ start: period.start.toISOString(), end: period.end?.toISOString() ?? null });
const expected = (start: string, end: string | null) => ({ start: at(start).toISOString(), end: end === null ? null : at(end).toISOString() });
const hours = (period: Period) => ((period.end?.getTime() ?? NaN) - period.start.getTime()) / 3_600_000;

describe('day periods across DST changes', () => {
  it.each([
    // zone, a local instant on the change day, that day's midnight, the next midnight, its length in hours
    ['Europe/Berlin', '2024-03-31T12:00:00+02:00', '2024-03-31T00:00:00+01:00', '2024-04-01T00:00:00+02:00', 23],
    ['Europe/Berlin', '2024-10-27T12:00:00+01:00', '2024-10-27T00:00:00+02:00', '2024-10-28T00:00:00+01:00', 25],
    ['America/New_York', '2024-03-10T12:00:00-04:00', '2024-03-10T00:00:00-05:00', '2024-03-11T00:00:00-04:00', 23],
    ['America/New_York', '2024-11-03T12:00:00-05:00', '2024-11-03T00:00:00-04:00', '2024-11-04T00:00:00-05:00', 25],
  ])('%s: the day containing %s runs from local midnight to local midnight', (zone, instant, start, end, length) => {
    // given a daily reset that started weeks before the change
    const anchor = at('2024-02-10T08:30:00Z');
    // when the period of the change day is asked for
    const period = periodAt('day', anchor, zone, at(instant));
    // then both boundaries are at local midnight, and the day is an hour shorter or longer
    expect(show(period)).toEqual(expected(start, end));
    expect(hours(period)).toBe(length);
    // and the next day starts where this one ends
    expect(show(nextPeriod('day', anchor, zone, period)).start).toBe(at(end).toISOString());
  });

  it('America/Santiago: where midnight does not exist, the day starts at 01:00 (the first instant of the day)', () => {
    // On 2023-09-03 Chile's clocks jump from 00:00 to 01:00: there is no midnight that day.
    expect(Temporal.PlainDate.from('2023-09-03').toZonedDateTime('America/Santiago').toString()).toBe('2023-09-03T01:00:00-03:00[America/Santiago]');
    const anchor = at('2023-08-20T10:00:00-04:00');
    const saturday = periodAt('day', anchor, 'America/Santiago', at('2023-09-02T22:00:00-04:00'));
    expect(show(saturday)).toEqual(expected('2023-09-02T00:00:00-04:00', '2023-09-03T01:00:00-03:00'));
    // Saturday keeps 24 h (it ends at 01:00 local), and Sunday is the short day.
    expect(hours(saturday)).toBe(24);
    expect(hours(nextPeriod('day', anchor, 'America/Santiago', saturday))).toBe(23);
    // A monthly anniversary on the 3rd lands on the same first instant, not on the day before.
    expect(show(periodAt('month', at('2023-08-03T09:00:00-04:00'), 'America/Santiago', at('2023-09-10T12:00:00-03:00'))).start).toBe(
      at('2023-09-03T01:00:00-03:00').toISOString(),
    );
  });

  it('America/Havana: where midnight happens twice, the day starts at the first one and lasts 25 h', () => {
    // On 2023-11-05 Cuba's clocks go back from 01:00 to 00:00: 00:xx happens twice.
    const anchor = at('2023-10-01T12:00:00-04:00');
    const sunday = periodAt('day', anchor, 'America/Havana', at('2023-11-05T00:30:00-05:00'));
    expect(show(sunday)).toEqual(expected('2023-11-05T00:00:00-04:00', '2023-11-06T00:00:00-05:00'));
    expect(hours(sunday)).toBe(25);
    // And in March, midnight does not exist: 2023-03-12 starts at 01:00.
    expect(show(periodAt('day', at('2023-03-01T12:00:00-05:00'), 'America/Havana', at('2023-03-11T18:00:00-05:00')))).toEqual(
      expected('2023-03-11T00:00:00-05:00', '2023-03-12T01:00:00-04:00'),
    );
  });
});

describe('monthly anniversary', () => {
  const starts = (anchor: Date, zone: string, count: number) => {
    const result: string[] = [];
    let period = periodAt('month', anchor, zone, anchor);
    for (let i = 0; i < count; i++) {
      period = nextPeriod('month', anchor, zone, period);
      result.push(Temporal.Instant.fromEpochMilliseconds(period.start.getTime()).toZonedDateTimeISO(zone).toPlainDate().toString());
    }
    return result;
  };

  it('Jan 31 resets on the last day of short months, leap February included, and never drifts', () => {
    // given a subscription started on Jan 31 of a leap year
    // then it resets on Feb 29, and back on the 31st whenever the month has one
    expect(starts(at('2024-01-31T15:00:00Z'), 'UTC', 7)).toEqual(['2024-02-29', '2024-03-31', '2024-04-30', '2024-05-31', '2024-06-30', '2024-07-31', '2024-08-31']);
    // and in a common year on Feb 28, then Mar 31 again (clamped from the original day, not from Feb 28)
    expect(starts(at('2023-01-31T15:00:00Z'), 'UTC', 3)).toEqual(['2023-02-28', '2023-03-31', '2023-04-30']);
  });

  it('the first period runs from the subscription start to the first anniversary at local midnight', () => {
    const anchor = at('2024-01-31T15:00:00+01:00');
    expect(show(periodAt('month', anchor, 'Europe/Berlin', at('2024-02-10T00:00:00Z')))).toEqual(expected('2024-01-31T15:00:00+01:00', '2024-02-29T00:00:00+01:00'));
    // Across the spring change: the March anniversary is at +01:00, the April one at +02:00.
    expect(show(periodAt('month', anchor, 'Europe/Berlin', at('2024-04-10T00:00:00Z')))).toEqual(expected('2024-03-31T00:00:00+01:00', '2024-04-30T00:00:00+02:00'));
  });

  it('the anchor day is the local day: 23:30 UTC on Jan 30 is Jan 31 in Berlin, so Berlin resets on the 31st', () => {
    const anchor = at('2024-01-30T23:30:00Z');
    expect(show(periodAt('month', anchor, 'Europe/Berlin', at('2024-03-15T12:00:00Z')))).toEqual(expected('2024-02-29T00:00:00+01:00', '2024-03-31T00:00:00+01:00'));
    expect(show(periodAt('month', anchor, 'UTC', at('2024-03-15T12:00:00Z')))).toEqual(expected('2024-02-29T00:00:00Z', '2024-03-30T00:00:00Z'));
  });
});

describe('other zones and strategies', () => {
  it('Asia/Kathmandu (+05:45): the day boundary is at 18:15 UTC', () => {
    // 20:00 UTC is already 01:45 the next day in Kathmandu
    const anchor = at('2024-05-09T20:00:00Z');
    const first = periodAt('day', anchor, 'Asia/Kathmandu', anchor);
    expect(show(first)).toEqual(expected('2024-05-09T20:00:00Z', '2024-05-10T18:15:00Z'));
    expect(show(nextPeriod('day', anchor, 'Asia/Kathmandu', first))).toEqual(expected('2024-05-10T18:15:00Z', '2024-05-11T18:15:00Z'));
  });

  it('UTC calendar_month: the first period is the rest of the month, then every 1st', () => {
    const anchor = at('2024-01-20T10:00:00Z');
    const first = periodAt('calendar_month', anchor, 'UTC', anchor);
    expect(show(first)).toEqual(expected('2024-01-20T10:00:00Z', '2024-02-01T00:00:00Z'));
    expect(show(nextPeriod('calendar_month', anchor, 'UTC', first))).toEqual(expected('2024-02-01T00:00:00Z', '2024-03-01T00:00:00Z'));
    expect(show(periodAt('calendar_month', anchor, 'UTC', at('2024-12-31T23:59:59.999Z')))).toEqual(expected('2024-12-01T00:00:00Z', '2025-01-01T00:00:00Z'));
    // half-open: the boundary instant belongs to the new period
    expect(show(periodAt('calendar_month', anchor, 'UTC', at('2025-01-01T00:00:00Z'))).start).toBe('2025-01-01T00:00:00.000Z');
  });

  it("week: every local midnight of the anchor's local weekday", () => {
    // given a subscription started on Tuesday 2024-05-14 at 15:00 in Berlin
    const anchor = at('2024-05-14T15:00:00+02:00');
    // then its first week ends on the next Tuesday's midnight, and the week containing Thursday the 23rd starts on Tuesday the 21st
    expect(show(periodAt('week', anchor, 'Europe/Berlin', anchor))).toEqual(expected('2024-05-14T15:00:00+02:00', '2024-05-21T00:00:00+02:00'));
    expect(show(periodAt('week', anchor, 'Europe/Berlin', at('2024-05-23T09:00:00+02:00')))).toEqual(expected('2024-05-21T00:00:00+02:00', '2024-05-28T00:00:00+02:00'));
    // The weekday is the local one: Monday 23:30 UTC is Tuesday 05:15 in Kathmandu.
    const late = at('2024-05-13T23:30:00Z');
    expect(show(periodAt('week', late, 'Asia/Kathmandu', late)).end).toBe(at('2024-05-21T00:00:00+05:45').toISOString());
    expect(show(periodAt('week', late, 'UTC', late)).end).toBe(at('2024-05-20T00:00:00Z').toISOString());
  });

  it('none: one period from the anchor without an end, and no next one', () => {
    const anchor = at('2024-05-14T15:00:00Z');
    const period = periodAt('none', anchor, 'Europe/Berlin', at('2034-01-01T00:00:00Z'));
    expect(show(period)).toEqual(expected('2024-05-14T15:00:00Z', null));
    expect(() => nextPeriod('none', anchor, 'Europe/Berlin', period)).toThrow(RangeError);
  });

  it('refuses an instant before the anchor', () => {
    expect(() => periodAt('day', at('2024-05-14T15:00:00Z'), 'UTC', at('2024-05-14T14:59:59Z'))).toThrow(/before the anchor/);
  });
});

describe('addLocalDays', () => {
  it('keeps the local wall-clock time across a DST change (30 days in March are 30 days minus an hour)', () => {
    const start = at('2024-03-15T10:00:00+01:00');
    const end = addLocalDays(start, 30, 'Europe/Berlin');
    expect(end.toISOString()).toBe(at('2024-04-14T10:00:00+02:00').toISOString());
    expect((end.getTime() - start.getTime()) / 3_600_000).toBe(30 * 24 - 1);
    expect(addLocalDays(start, 30, 'UTC').toISOString()).toBe(at('2024-04-14T09:00:00Z').toISOString());
  });

  it('a wall-clock time inside the DST gap moves forward by the gap', () => {
    expect(addLocalDays(at('2024-03-30T02:30:00+01:00'), 1, 'Europe/Berlin').toISOString()).toBe(at('2024-03-31T03:30:00+02:00').toISOString());
  });
});

describe('checkTimeZone', () => {
  it.each([
    ['UTC', 'UTC'],
    ['utc', 'UTC'],
    ['europe/berlin', 'Europe/Berlin'],
    ['Asia/Kathmandu', 'Asia/Kathmandu'],
    ['America/Port-au-Prince', 'America/Port-au-Prince'],
    ['Etc/GMT+1', 'Etc/GMT+1'],
  ])('accepts %s as %s', (input, canonical) => {
    expect(checkTimeZone(input)).toBe(canonical);
  });

  it.each(['Mars/Olympus', '', 'utc+1', '+01:00', 'Europe/Berlin ', '2024-01-01T00:00Z[Europe/Berlin]', 'Z'])('refuses %j with invalid_time_zone', (input) => {
    let error: unknown;
    try {
      checkTimeZone(input, 'user.timeZone');
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toMatchObject({ code: 'invalid_time_zone', details: { field: 'user.timeZone' } });
    expect((error as Error).message).toMatch(/^user\.timeZone: must be an IANA time zone name/);
  });

  it('names the field timeZone by default, and refuses a value that is not a string', () => {
    for (const input of ['Moon/Base', 42 as unknown as string]) {
      expect(() => checkTimeZone(input)).toThrow(DomainError);
      expect(() => checkTimeZone(input)).toThrow(/^timeZone: /);
    }
  });
});

/** mulberry32: a small seeded PRNG, so that a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/**
 * The rules restated naively, independent of the module's arithmetic: is this local date a
 * boundary for a subscription anchored on `anchorDate`?
 */
function isBoundaryDate(strategy: ResetStrategy, anchorDate: Temporal.PlainDate, date: Temporal.PlainDate): boolean {
  switch (strategy) {
    case 'day':
      return true;
    case 'week':
      return date.dayOfWeek === anchorDate.dayOfWeek;
    case 'month':
      return date.day === Math.min(anchorDate.day, date.daysInMonth);
    case 'calendar_month':
      return date.day === 1;
    case 'none':
      return false;
  }
}

describe('periodAt equals walking nextPeriod from the first period (random anchors, zones, strategies)', () => {
  const zones = ['UTC', 'Europe/Berlin', 'America/New_York', 'America/Santiago', 'America/Havana', 'Asia/Kathmandu', 'Australia/Lord_Howe', 'Pacific/Chatham', 'Asia/Tehran', 'Pacific/Apia'];
  const strategies = RESET_STRATEGIES.filter((strategy) => strategy !== 'none');
  const localDate = (instant: Date | number, zone: string) => Temporal.Instant.fromEpochMilliseconds(+instant).toZonedDateTimeISO(zone).toPlainDate();
  const firstInstant = (date: Temporal.PlainDate, zone: string) => date.toPlainDateTime({ hour: 12 }).toZonedDateTime(zone).startOfDay().epochMilliseconds;

  it('120 seeded cases: contiguous, every boundary the first instant of the next rule date, periodAt finds the same periods, also 10-30 years on', () => {
    const random = prng(0x5eed13);
    for (let c = 0; c < 120; c++) {
      const zone = zones[Math.floor(random() * zones.length)]!;
      const strategy = strategies[Math.floor(random() * strategies.length)]!;
      const anchor = new Date(Date.UTC(2000, 0, 1) + Math.floor(random() * 30 * 365 * 86_400_000));
      const label = `case ${c}: ${strategy} anchored ${anchor.toISOString()} in ${zone}`;
      const anchorDate = localDate(anchor, zone);
      const isRuleDate = (date: Temporal.PlainDate) => isBoundaryDate(strategy, anchorDate, date);

      // Walk the first periods one by one.
      let period = periodAt(strategy, anchor, zone, anchor);
      expect(period.start.getTime(), label).toBe(anchor.getTime());
      const walked: Period[] = [period];
      for (let i = 0; i < 40; i++) {
        const next = nextPeriod(strategy, anchor, zone, period);
        expect(next.start.getTime(), label).toBe(period.end!.getTime());
        walked.push(next);
        period = next;
      }
      for (const [i, p] of walked.entries()) {
        // The end is the first instant of the first rule date after the start's date (found day by day).
        let date = localDate(p.start, zone).add({ days: 1 });
        while (!isRuleDate(date)) date = date.add({ days: 1 });
        expect(p.end!.getTime(), `${label}, period ${i}`).toBe(firstInstant(date, zone));
        // Any instant inside the period, its first and last millisecond included, finds the same period.
        const inside = p.start.getTime() + Math.floor(random() * (p.end!.getTime() - p.start.getTime()));
        for (const probe of [p.start.getTime(), inside, p.end!.getTime() - 1]) {
          expect(show(periodAt(strategy, anchor, zone, new Date(probe))), `${label}, period ${i}`).toEqual(show(p));
        }
      }

      // Far ahead: the period starts on the last rule date on or before the instant's date and ends on the next one.
      const far = new Date(anchor.getTime() + Math.floor((10 + random() * 20) * 365 * 86_400_000));
      const p = periodAt(strategy, anchor, zone, far);
      let before = localDate(far, zone);
      while (!isRuleDate(before)) before = before.subtract({ days: 1 });
      let after = localDate(far, zone).add({ days: 1 });
      while (!isRuleDate(after)) after = after.add({ days: 1 });
      expect(show(p), `${label}, at ${far.toISOString()}`).toEqual({
        start: new Date(firstInstant(before, zone)).toISOString(),
        end: new Date(firstInstant(after, zone)).toISOString(),
      });
      expect(show(nextPeriod(strategy, anchor, zone, p)).start, label).toBe(p.end!.toISOString());
    }
  });

  it('periodAt 30 years after the anchor is as fast as the first period (no walk over past periods)', () => {
    const anchor = at('2001-01-31T12:00:00Z');
    const time = (when: Date) => {
      const started = performance.now();
      for (let i = 0; i < 200; i++) periodAt('day', anchor, 'Europe/Berlin', when);
      return performance.now() - started;
    };
    time(anchor); // warm up
    const near = time(anchor);
    const far = time(at('2031-06-15T12:00:00Z'));
    // 11,000 days later: a walk would be thousands of times slower; arithmetic costs the same.
    expect(far).toBeLessThan(near * 5 + 20);
  });
});
