/** Given/when/then for metering's commands on a subscription: limits, thresholds, expiry reminders, first traffic. */
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { fold } from '../../producers/decider.js';
import type { PlanTerms } from '../../producers/plans/model.js';
import { subscriptionDecider, type SubscriptionCommand, type SubscriptionEventKey } from '../../producers/plans/subscription.decider.js';
import { shortfallPerPeriod, type OverAllowance } from '../../projectors/plans/metering.projection.js';
import { given } from '../support/decider-spec.js';

type E = DomainEvent<SubscriptionEventKey>;
const at = new Date('2026-03-20T12:00:00Z');
const MiB = 1_048_576n;
const terms: PlanTerms = {
  allowanceBytes: 10n * MiB,
  resetStrategy: 'month',
  validity: { kind: 'days', days: 30 },
  ipLimit: null,
  nodeLabels: [],
  inboundKinds: [],
  price: { amountMinor: 100n, currency: 'EUR' },
  nextPlanId: null,
  overage: 'block',
  overagePriceMinor: null,
};
const decide = (history: E[], command: SubscriptionCommand) => subscriptionDecider.decide(command, fold(subscriptionDecider, subscriptionDecider.initialState, history));
const startOf = (t: PlanTerms, timeZone = 'UTC') => decide([], { type: 'Start', userId: 'u1', planId: 'p', terms: t, startsAt: at, timeZone, cause: 'operator', by: 'user:op', at });
const started = startOf(terms);
const periodStart = at;
const expiresAt = new Date('2026-04-19T12:00:00Z');

describe('metering: limits', () => {
  it('limits a block-overage period once, only the current period; a soft overage is never limited', () => {
    const limited: E = { type: 'plans.SubscriptionLimited', data: { userId: 'u1', periodStart, cause: 'allowance_spent', usedBytes: 10n * MiB, limitedAt: at } };
    const mark = (p = periodStart): SubscriptionCommand => ({ type: 'MarkLimited', periodStart: p, usedBytes: 10n * MiB, cause: 'allowance_spent', at });
    given(subscriptionDecider, started).when(mark()).then([limited]);
    given(subscriptionDecider, [...started, limited]).when(mark()).then([]);
    given(subscriptionDecider, started).when(mark(new Date('2026-02-20T12:00:00Z'))).then([]);
    given(subscriptionDecider, startOf({ ...terms, overage: 'soft' })).when(mark()).then([]);
  });

  it('reactivates a limited period once; a grant alone only records the grant (metering reactivates when it sees room)', () => {
    const limited: E = { type: 'plans.SubscriptionLimited', data: { userId: 'u1', periodStart, cause: 'allowance_spent', usedBytes: 10n * MiB, limitedAt: at } };
    const reactivated: E = { type: 'plans.SubscriptionReactivated', data: { userId: 'u1', periodStart, cause: 'metering', reactivatedAt: at } };
    given(subscriptionDecider, [...started, limited]).when({ type: 'Reactivate', periodStart, cause: 'metering', at }).then([reactivated]);
    given(subscriptionDecider, [...started, limited, reactivated]).when({ type: 'Reactivate', periodStart, cause: 'metering', at }).then([]);
    const events = decide([...started, limited], { type: 'AddGrant', grantId: 'g', bytes: MiB, expiresAt: null, by: 'user:op', at });
    expect(events.map((e) => e.type)).toEqual(['plans.GrantAdded']);
  });
});

describe('metering: thresholds', () => {
  const reached = (percent: number, usedBytes: bigint, p = periodStart): E => ({ type: 'plans.UsageThresholdReached', data: { userId: 'u1', periodStart: p, percent, usedBytes, allowanceBytes: 10n * MiB, reachedAt: at } });
  const note = (usedBytes: bigint, p = periodStart): SubscriptionCommand => ({ type: 'NoteUsage', periodStart: p, usedBytes, at });

  it('notes each of 80, 95 and 100 % once per period, several at once when one batch crosses them', () => {
    given(subscriptionDecider, started).when(note(7n * MiB)).then([]);
    given(subscriptionDecider, started).when(note(8n * MiB)).then([reached(80, 8n * MiB)]);
    given(subscriptionDecider, started).when(note(10n * MiB)).then([reached(80, 10n * MiB), reached(95, 10n * MiB), reached(100, 10n * MiB)]);
    given(subscriptionDecider, [...started, reached(80, 8n * MiB)]).when(note(9n * MiB)).then([]);
    given(subscriptionDecider, [...started, reached(80, 8n * MiB)]).when(note(10n * MiB)).then([reached(95, 10n * MiB), reached(100, 10n * MiB)]);
  });

  it('ignores another period, an unlimited plan, and starts over after a roll', () => {
    given(subscriptionDecider, started).when(note(10n * MiB, new Date('2026-02-20T12:00:00Z'))).then([]);
    given(subscriptionDecider, startOf({ ...terms, allowanceBytes: null })).when(note(10n * MiB)).then([]);
    const end = new Date('2026-04-20T00:00:00Z');
    const rolled = decide([...started, reached(80, 8n * MiB)], { type: 'RollPeriod', periodEnd: new Date('2026-04-20T00:00:00Z'), terms, timeZone: 'UTC', at: end });
    // This plan expires before its period ends: no roll; a plan without validity rolls and notes again.
    expect(rolled).toEqual([]);
    const open = startOf({ ...terms, validity: { kind: 'none' } });
    const roll = decide([...open, reached(80, 8n * MiB)], { type: 'RollPeriod', periodEnd: end, terms, timeZone: 'UTC', at: end });
    expect(roll.map((e) => e.type)).toEqual(['plans.PeriodRolled']);
    given(subscriptionDecider, [...open, reached(80, 8n * MiB), ...roll]).when(note(8n * MiB, end)).then([reached(80, 8n * MiB, end)]);
  });
});

describe('metering: expiry reminders', () => {
  const approaching = (daysLeft: number, when: Date): E => ({ type: 'plans.ExpiryApproaching', data: { userId: 'u1', expiresAt, daysLeft, notedAt: when } });
  const note = (when: Date, e = expiresAt): SubscriptionCommand => ({ type: 'NoteExpiry', expiresAt: e, at: when });
  const d3 = new Date('2026-04-16T12:00:00Z');
  const d1 = new Date('2026-04-18T12:00:00Z');

  it('reminds 3 days, then 1 day ahead, once each; not early, not for another expiry, not after it', () => {
    given(subscriptionDecider, started).when(note(new Date(d3.getTime() - 1))).then([]);
    given(subscriptionDecider, started).when(note(d3)).then([approaching(3, d3)]);
    given(subscriptionDecider, [...started, approaching(3, d3)]).when(note(d3)).then([]);
    given(subscriptionDecider, [...started, approaching(3, d3)]).when(note(d1)).then([approaching(1, d1)]);
    given(subscriptionDecider, [...started, approaching(3, d3), approaching(1, d1)]).when(note(d1)).then([]);
    given(subscriptionDecider, started).when(note(d3, new Date('2026-05-01T00:00:00Z'))).then([]);
    given(subscriptionDecider, started).when(note(expiresAt)).then([]);
  });

  it('found late, sends only the nearest reminder and not the stale one after it', () => {
    given(subscriptionDecider, started).when(note(d1)).then([approaching(1, d1)]);
    given(subscriptionDecider, [...started, approaching(1, d1)]).when(note(d1)).then([]);
  });

  it('counts local days: across the spring change in Berlin, 3 days ahead is 71 hours', () => {
    const march1 = new Date('2026-03-01T12:00:00Z');
    const berlin = decide([], { type: 'Start', userId: 'u1', planId: 'p', terms, startsAt: march1, timeZone: 'Europe/Berlin', cause: 'operator', by: 'user:op', at: march1 });
    const expiry = (berlin[0]!.data as { expiresAt: Date }).expiresAt;
    expect(expiry).toEqual(new Date('2026-03-31T11:00:00Z'));
    const hoursAhead = (h: number): SubscriptionCommand => ({ type: 'NoteExpiry', expiresAt: expiry, at: new Date(expiry.getTime() - h * 3_600_000) });
    given(subscriptionDecider, berlin).when(hoursAhead(72)).then([]);
    expect(decide(berlin, hoursAhead(71)).map((e) => e.data)).toMatchObject([{ daysLeft: 3 }]);
  });
});

describe('metering: first traffic', () => {
  it('starts a hold at the first traffic, once', () => {
    const held = startOf({ ...terms, validity: { kind: 'on_hold', days: 30, timeoutDays: 7 } });
    const traffic = new Date('2026-03-21T08:00:00Z');
    const events = decide(held, { type: 'Activate', cause: 'first_traffic', trafficAt: traffic, timeZone: 'UTC', at: traffic });
    expect(events).toMatchObject([{ type: 'plans.SubscriptionActivated', data: { cause: 'first_traffic', clockStart: traffic, periodStart: traffic } }]);
    given(subscriptionDecider, [...held, ...events]).when({ type: 'Activate', cause: 'first_traffic', trafficAt: traffic, timeZone: 'UTC', at: traffic }).then([]);
  });
});

describe('metering: one shortfall per period', () => {
  const p1 = new Date('2026-01-01T00:00:00Z');
  const p2 = new Date('2026-02-01T00:00:00Z');
  const t = (s: number) => new Date(p2.getTime() + s * 1000);

  it('keeps the largest shortfall a batch answered for each period, not their sum, so grants are drawn once', () => {
    // Two interval ends of one user in one batch: the second round's shortfall includes the first's.
    const rounds: OverAllowance[] = [
      { user_id: 'u1', period_start: p2, need: '100', at: t(10) },
      { user_id: 'u1', period_start: p2, need: '250', at: t(20) },
      { user_id: 'u1', period_start: p1, need: '7', at: t(5) },
      { user_id: 'u2', period_start: p2, need: '1', at: t(20) },
    ];
    expect(shortfallPerPeriod(rounds)).toEqual([
      { user_id: 'u1', period_start: p2, need: '250', at: t(20) },
      { user_id: 'u1', period_start: p1, need: '7', at: t(5) },
      { user_id: 'u2', period_start: p2, need: '1', at: t(20) },
    ]);
  });
});
