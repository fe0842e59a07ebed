/** What billing asks of plans: paid months in the user's zone (addLocalMonths), a start with the expiry paid for, and extensions by order. */
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import type { PlanTerms } from '../../producers/plans/model.js';
import { addLocalMonths, localDayOfMonth } from '../../producers/plans/periods.js';
import { subscriptionDecider, type SubscriptionCommand, type SubscriptionEventKey } from '../../producers/plans/subscription.decider.js';
import { fold } from '../../producers/decider.js';
import { given } from '../support/decider-spec.js';

type E = DomainEvent<SubscriptionEventKey>;
const at = (iso: string) => new Date(iso);
const iso = (d: Date) => d.toISOString();

describe('addLocalMonths', () => {
  it('clamps to the last day of a short month, Feb 29 in a leap year', () => {
    expect(iso(addLocalMonths(at('2026-01-31T10:00:00Z'), 1, 'UTC'))).toBe('2026-02-28T10:00:00.000Z');
    expect(iso(addLocalMonths(at('2028-01-31T10:00:00Z'), 1, 'UTC'))).toBe('2028-02-29T10:00:00.000Z');
    expect(iso(addLocalMonths(at('2026-01-31T10:00:00Z'), 3, 'UTC'))).toBe('2026-04-30T10:00:00.000Z');
    expect(iso(addLocalMonths(at('2026-11-30T10:00:00Z'), 3, 'UTC'))).toBe('2027-02-28T10:00:00.000Z');
  });

  it('counts from an anchor day when given one: a 31st stays a 31st after February', () => {
    expect(iso(addLocalMonths(at('2026-02-28T10:00:00Z'), 1, 'UTC', 31))).toBe('2026-03-31T10:00:00.000Z');
    expect(iso(addLocalMonths(at('2026-02-28T10:00:00Z'), 2, 'UTC', 31))).toBe('2026-04-30T10:00:00.000Z');
    expect(iso(addLocalMonths(at('2026-02-28T10:00:00Z'), 1, 'UTC'))).toBe('2026-03-28T10:00:00.000Z');
  });

  it('keeps the local wall-clock time across a DST change', () => {
    // Berlin: 09:00 CET (UTC+1) on Mar 15, 09:00 CEST (UTC+2) on Apr 15.
    expect(iso(addLocalMonths(at('2026-03-15T08:00:00Z'), 1, 'Europe/Berlin'))).toBe('2026-04-15T07:00:00.000Z');
    // And back: 09:00 CEST on Oct 15, 09:00 CET on Nov 15.
    expect(iso(addLocalMonths(at('2026-10-15T07:00:00Z'), 1, 'Europe/Berlin'))).toBe('2026-11-15T08:00:00.000Z');
  });

  it('Pacific/Auckland: local midnight on a month\'s last day lands on the next month\'s last day at local midnight', () => {
    // Jan 31 00:00 NZDT (UTC+13) → Feb 28 00:00 NZDT.
    const jan31 = at('2026-01-30T11:00:00Z');
    expect(localDayOfMonth(jan31, 'Pacific/Auckland')).toBe(31);
    expect(iso(addLocalMonths(jan31, 1, 'Pacific/Auckland'))).toBe('2026-02-27T11:00:00.000Z');
    // Mar 31 00:00 NZDT → Apr 30 00:00 NZST (UTC+12, DST ended Apr 5).
    expect(iso(addLocalMonths(at('2026-03-30T11:00:00Z'), 1, 'Pacific/Auckland'))).toBe('2026-04-29T12:00:00.000Z');
    // From Feb 28 with the anchor day 31: Mar 31 00:00 NZDT.
    expect(iso(addLocalMonths(at('2026-02-27T11:00:00Z'), 1, 'Pacific/Auckland', 31))).toBe('2026-03-30T11:00:00.000Z');
  });

  it('refuses a fractional number of months', () => {
    expect(() => addLocalMonths(at('2026-01-31T10:00:00Z'), 1.5, 'UTC')).toThrow(RangeError);
  });
});

describe('localDayOfMonth', () => {
  it('is the day of the month where the user lives', () => {
    const instant = at('2026-01-30T11:00:00Z');
    expect(localDayOfMonth(instant, 'UTC')).toBe(30);
    expect(localDayOfMonth(instant, 'Pacific/Auckland')).toBe(31);
    expect(localDayOfMonth(at('2026-03-01T03:00:00Z'), 'America/Los_Angeles')).toBe(28);
  });
});

describe('subscription: billing', () => {
  const MiB = 1_048_576n;
  const days: PlanTerms = { allowanceBytes: 10n * MiB, resetStrategy: 'month', validity: { kind: 'days', days: 90 }, ipLimit: 2, nodeLabels: ['eu'], inboundKinds: ['vless-reality'], price: { amountMinor: 1199n, currency: 'EUR' }, nextPlanId: null, overage: 'block', overagePriceMinor: null };
  const onHold: PlanTerms = { ...days, validity: { kind: 'on_hold', days: 30, timeoutDays: 7 } };
  const startsAt = at('2026-01-31T10:00:00Z');
  const paidUntil = at('2026-02-28T10:00:00Z');
  const start = (terms: PlanTerms, expiresAt?: Date, planId = 'pro'): SubscriptionCommand => ({
    type: 'Start', userId: 'u1', planId, terms, startsAt, timeZone: 'UTC', cause: 'order', by: 'system:billing', at: startsAt, requestId: 'ord_1', ...(expiresAt ? { expiresAt } : {}),
  });
  const run = (history: E[], command: SubscriptionCommand) => subscriptionDecider.decide(command, fold(subscriptionDecider, subscriptionDecider.initialState, history));
  const started = run([], start(days, paidUntil));
  const extend = (orderId: string, expiresAt: Date, planId = 'pro', when = at('2026-02-20T10:00:00Z')): SubscriptionCommand => ({ type: 'Extend', orderId, planId, expiresAt, at: when });
  const extended = (orderId: string, previousExpiresAt: Date, expiresAt: Date): E => ({ type: 'plans.SubscriptionExtended', data: { userId: 'u1', orderId, planId: 'pro', previousExpiresAt, expiresAt, extendedAt: at('2026-02-20T10:00:00Z') } });

  it('an order starts with the expiry it paid for, not the plan validity', () => {
    expect(started).toEqual([
      {
        type: 'plans.SubscriptionStarted',
        data: {
          userId: 'u1', planId: 'pro', cause: 'order', by: 'system:billing', status: 'active', startsAt,
          periodStart: startsAt, periodEnd: at('2026-02-28T00:00:00Z'), timeZone: 'UTC',
          allowanceBytes: 10n * MiB, resetStrategy: 'month', ipLimit: 2, nodeLabels: ['eu'], inboundKinds: ['vless-reality'], overage: 'block',
          validityKind: 'days', validityDays: 90, expiresAt: paidUntil, onHoldUntil: null, nextPlanId: null, startedAt: startsAt, requestId: 'ord_1',
        },
      },
    ]);
    expect(run([], start(days))[0]?.data).toMatchObject({ expiresAt: at('2026-05-01T10:00:00Z') });
  });

  it('an order runs at once even for an on-hold plan', () => {
    const events = run([], start(onHold, paidUntil));
    expect(events[0]?.data).toMatchObject({ status: 'active', periodStart: startsAt, periodEnd: at('2026-02-28T00:00:00Z'), expiresAt: paidUntil, onHoldUntil: null });
    expect(fold(subscriptionDecider, subscriptionDecider.initialState, events)).toMatchObject({ phase: 'running', anchor: startsAt, expiresAt: paidUntil, onHoldUntil: null });
    // Without an expiry given, the plan holds as before.
    expect(run([], start(onHold))[0]?.data).toMatchObject({ status: 'on_hold', expiresAt: null });
  });

  it('an order start is idempotent by the order, and refused when it would already have expired', () => {
    given(subscriptionDecider, started).when(start(days, paidUntil)).then([]);
    given(subscriptionDecider).when(start(days, startsAt)).thenError('invalid_subscription');
  });

  it('extends the running plan to a later expiry, once per order', () => {
    const until = at('2026-03-31T10:00:00Z');
    given(subscriptionDecider, started).when(extend('ord_2', until)).then([extended('ord_2', paidUntil, until)]);
    const history = [...started, extended('ord_2', paidUntil, until)];
    given(subscriptionDecider, history).when(extend('ord_2', until)).then([]);
    // A retry after a later extension is still the same order: nothing, although its expiry is no longer later.
    const later = at('2026-04-30T10:00:00Z');
    given(subscriptionDecider, [...history, extended('ord_3', until, later)]).when(extend('ord_2', until)).then([]);
    expect(fold(subscriptionDecider, subscriptionDecider.initialState, [...history, extended('ord_3', until, later)])).toMatchObject({ expiresAt: later, extendedBy: ['ord_2', 'ord_3'] });
  });

  it('the order that started the subscription does not extend it', () => {
    given(subscriptionDecider, started).when(extend('ord_1', at('2026-03-31T10:00:00Z'))).then([]);
  });

  it('an extension brings the reminders of its new expiry', () => {
    const reminded: E = { type: 'plans.ExpiryApproaching', data: { userId: 'u1', expiresAt: paidUntil, daysLeft: 3, notedAt: at('2026-02-25T10:00:00Z') } };
    const until = at('2026-03-31T10:00:00Z');
    const state = fold(subscriptionDecider, subscriptionDecider.initialState, [...started, reminded, extended('ord_2', paidUntil, until)]);
    expect(state.remindedDays).toEqual([]);
  });

  it('refuses an expired subscription, another plan, and an expiry that is not later', () => {
    const expired: E = { type: 'plans.SubscriptionExpired', data: { userId: 'u1', planId: 'pro', expiresAt: paidUntil, nextPlanId: null, cause: 'validity_ended', expiredAt: paidUntil } };
    given(subscriptionDecider, [...started, expired]).when(extend('ord_2', at('2026-03-31T10:00:00Z'))).thenError('subscription_expired');
    given(subscriptionDecider, started).when(extend('ord_2', at('2026-03-31T10:00:00Z'), 'basic')).thenError('subscription_changed');
    given(subscriptionDecider, run([], start(onHold))).when(extend('ord_2', at('2026-03-31T10:00:00Z'))).thenError('subscription_changed');
    given(subscriptionDecider, started).when(extend('ord_2', paidUntil)).thenError('invalid_extension');
    given(subscriptionDecider, started).when(extend('ord_2', at('2026-02-27T10:00:00Z'))).thenError('invalid_extension');
    given(subscriptionDecider).when(extend('ord_2', at('2026-03-31T10:00:00Z'))).thenError('subscription_not_found');
  });
});
