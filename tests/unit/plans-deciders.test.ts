/** Given/when/then for the plans aggregates: plans of the catalogue, and users' subscriptions. */
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError } from '../../producers/decider.js';
import { termsToFields, validatePlanInput, type PlanTerms } from '../../producers/plans/model.js';
import { planDecider, type PlanEventKey } from '../../producers/plans/plan.decider.js';
import { dueAt, nextDueAt, statusOf, subscriptionDecider, type SubscriptionCommand, type SubscriptionEventKey } from '../../producers/plans/subscription.decider.js';
import { fold } from '../../producers/decider.js';
import { given } from '../support/decider-spec.js';

const at = new Date('2026-01-31T10:00:00Z');
const MiB = 1_048_576n;
const terms: PlanTerms = {
  allowanceBytes: 10n * MiB,
  resetStrategy: 'month',
  validity: { kind: 'days', days: 90 },
  ipLimit: 2,
  nodeLabels: ['eu'],
  inboundKinds: ['vless-reality'],
  price: { amountMinor: 499n, currency: 'EUR' },
  nextPlanId: null,
  overage: 'block',
  overagePriceMinor: null,
};

describe('plan input', () => {
  const input = { name: 'Basic', allowanceBytes: '10485760', resetStrategy: 'month', validity: { kind: 'days', days: 90 }, ipLimit: 2, nodeLabels: ['eu'], inboundKinds: ['vless-reality'], price: { amountMinor: 499, currency: 'EUR' } };

  it('reads bytes from decimal strings exactly, past 2^53', () => {
    expect(validatePlanInput({ ...input, allowanceBytes: '9223372036854775807' }).terms.allowanceBytes).toBe(2n ** 63n - 1n);
    expect(validatePlanInput(input).terms).toEqual(terms);
  });

  it('refuses each bad field with invalid_plan naming it', () => {
    const field = (patch: Record<string, unknown>) => {
      try {
        validatePlanInput({ ...input, ...patch });
      } catch (err) {
        expect(err).toBeInstanceOf(DomainError);
        expect((err as DomainError).code).toBe('invalid_plan');
        return (err as DomainError).details['field'];
      }
      return 'accepted';
    };
    expect(field({ allowanceBytes: 10 })).toBe('allowanceBytes');
    expect(field({ allowanceBytes: '9223372036854775808' })).toBe('allowanceBytes');
    expect(field({ price: { amountMinor: 1, currency: 'EUX' } })).toBe('price.currency');
    expect(field({ price: { amountMinor: 1.5, currency: 'EUR' } })).toBe('price.amountMinor');
    expect(field({ resetStrategy: 'hourly' })).toBe('resetStrategy');
    expect(field({ validity: { kind: 'on_hold', days: 30 } })).toBe('validity.timeoutDays');
    expect(field({ inboundKinds: ['wireguard'] })).toBe('inboundKinds');
    expect(field({ nextPlanId: 'a.b' })).toBe('nextPlanId');
    expect(field({ overage: 'throttle' })).toBe('overage');
  });
});

describe('plan', () => {
  const created: DomainEvent<PlanEventKey> = { type: 'plans.PlanCreated', data: { planId: 'basic', name: 'Basic', ...termsToFields(terms), createdAt: at } };

  it('creates once; a second creation of the id is refused', () => {
    given(planDecider).when({ type: 'CreatePlan', planId: 'basic', name: 'Basic', terms, at }).then([created]);
    given(planDecider, [created]).when({ type: 'CreatePlan', planId: 'basic', name: 'Basic', terms, at }).thenError('plan_exists');
  });

  it('records a change only; a plan cannot follow itself', () => {
    given(planDecider, [created]).when({ type: 'UpdatePlan', planId: 'basic', name: 'Basic', terms, at }).then([]);
    const more = { ...terms, allowanceBytes: 20n * MiB };
    given(planDecider, [created]).when({ type: 'UpdatePlan', planId: 'basic', name: 'Basic', terms: more, at }).then([{ type: 'plans.PlanUpdated', data: { planId: 'basic', name: 'Basic', ...termsToFields(more), updatedAt: at } }]);
    given(planDecider, [created]).when({ type: 'UpdatePlan', planId: 'basic', name: 'Basic', terms: { ...terms, nextPlanId: 'basic' }, at }).thenError('invalid_plan');
    given(planDecider).when({ type: 'UpdatePlan', planId: 'basic', name: 'Basic', terms, at }).thenError('plan_not_found');
  });

  it('retires once; a retired plan takes no change', () => {
    const retired: DomainEvent<PlanEventKey> = { type: 'plans.PlanRetired', data: { planId: 'basic', by: 'user:op', retiredAt: at } };
    given(planDecider, [created]).when({ type: 'RetirePlan', planId: 'basic', by: 'user:op', at }).then([retired]);
    given(planDecider, [created, retired]).when({ type: 'RetirePlan', planId: 'basic', by: 'user:op', at }).then([]);
    given(planDecider, [created, retired]).when({ type: 'UpdatePlan', planId: 'basic', name: 'x', terms, at }).thenError('plan_retired');
  });
});

describe('subscription', () => {
  const start = (t: PlanTerms = terms, when = at, planId = 'basic'): SubscriptionCommand => ({ type: 'Start', userId: 'u1', planId, terms: t, startsAt: when, timeZone: 'UTC', cause: 'operator', by: 'user:op', at: when });
  const run = (history: DomainEvent<SubscriptionEventKey>[], command: SubscriptionCommand) => subscriptionDecider.decide(command, fold(subscriptionDecider, subscriptionDecider.initialState, history));
  const started = run([], start());
  const feb28 = new Date('2026-02-28T00:00:00Z');

  it('starts active with the current period and the expiry in the user zone (an anniversary on the 31st resets on Feb 28)', () => {
    expect(started).toEqual([
      {
        type: 'plans.SubscriptionStarted',
        data: {
          userId: 'u1', planId: 'basic', cause: 'operator', by: 'user:op', status: 'active', startsAt: at,
          periodStart: at, periodEnd: feb28, timeZone: 'UTC',
          allowanceBytes: 10n * MiB, resetStrategy: 'month', ipLimit: 2, nodeLabels: ['eu'], inboundKinds: ['vless-reality'], overage: 'block',
          validityKind: 'days', validityDays: 90, expiresAt: new Date('2026-05-01T10:00:00Z'), onHoldUntil: null, nextPlanId: null, startedAt: at, requestId: null,
        },
      },
    ]);
  });

  it('a start repeating the request id of the current subscription decides nothing; another id starts afresh', () => {
    const withId = (requestId: string): SubscriptionCommand => ({ ...start(), requestId }) as SubscriptionCommand;
    const first = run([], withId('order-7'));
    expect(first).toMatchObject([{ type: 'plans.SubscriptionStarted', data: { requestId: 'order-7' } }]);
    given(subscriptionDecider, first).when(withId('order-7')).then([]);
    expect(run(first, withId('order-8'))).toMatchObject([{ type: 'plans.SubscriptionStarted', data: { requestId: 'order-8' } }]);
  });

  it('refuses a start in the future, or one that would already have expired', () => {
    given(subscriptionDecider).when({ ...start(), startsAt: new Date(at.getTime() + 3_600_000) } as SubscriptionCommand).thenError('invalid_subscription');
    given(subscriptionDecider).when({ ...start(), startsAt: new Date('2025-01-01T00:00:00Z') } as SubscriptionCommand).thenError('invalid_subscription');
  });

  it('rolls the current period once, when it is over, to the plan terms of now', () => {
    const roll = (periodEnd: Date, when: Date, t = terms): SubscriptionCommand => ({ type: 'RollPeriod', periodEnd, terms: t, timeZone: 'Europe/Berlin', at: when });
    const more = { ...terms, allowanceBytes: 20n * MiB };
    const rolled = run(started, roll(feb28, feb28, more));
    expect(rolled).toEqual([
      {
        type: 'plans.PeriodRolled',
        data: {
          userId: 'u1', planId: 'basic', previousPeriodEnd: feb28, periodStart: feb28,
          // The next boundary is local midnight in the zone the user has now: Mar 31 00:00 in Berlin.
          periodEnd: new Date('2026-03-30T22:00:00Z'), timeZone: 'Europe/Berlin',
          allowanceBytes: 20n * MiB, resetStrategy: 'month', ipLimit: 2, nodeLabels: ['eu'], inboundKinds: ['vless-reality'], overage: 'block', rolledAt: feb28,
        },
      },
    ]);
    given(subscriptionDecider, [...started, ...rolled]).when(roll(feb28, feb28)).then([]);
    given(subscriptionDecider, started).when(roll(new Date('2026-03-31T00:00:00Z'), feb28)).then([]);
    given(subscriptionDecider, started).when(roll(feb28, new Date(feb28.getTime() - 1))).thenError('period_not_over');
  });

  it('a new zone moves the next boundary by its offset only: moving west of the boundary does not start a fresh period hours later', () => {
    const monthly: PlanTerms = { ...terms, resetStrategy: 'calendar_month', validity: { kind: 'none' } };
    const jan15 = new Date('2026-01-15T10:00:00Z');
    const feb1 = new Date('2026-02-01T00:00:00Z');
    const history = run([], start(monthly, jan15));
    // In UTC until Feb 1; the user then picks UTC-12, where it is still Jan 31 noon.
    const rolled = run(history, { type: 'RollPeriod', periodEnd: feb1, terms: monthly, timeZone: 'Etc/GMT+12', at: feb1 });
    // Not Feb 1 12:00Z (the next local midnight there), but March 1 at local midnight: one month and 12 h.
    expect(rolled).toMatchObject([{ type: 'plans.PeriodRolled', data: { periodStart: feb1, periodEnd: new Date('2026-03-01T12:00:00Z'), timeZone: 'Etc/GMT+12' } }]);
  });

  it('marks limited once per period, on block overage only; reactivates once', () => {
    const limit: SubscriptionCommand = { type: 'MarkLimited', periodStart: at, usedBytes: 11n * MiB, cause: 'allowance_spent', at };
    const limited = run(started, limit);
    expect(limited).toEqual([{ type: 'plans.SubscriptionLimited', data: { userId: 'u1', periodStart: at, cause: 'allowance_spent', usedBytes: 11n * MiB, limitedAt: at } }]);
    given(subscriptionDecider, [...started, ...limited]).when(limit).then([]);
    given(subscriptionDecider, started).when({ ...limit, periodStart: feb28 }).then([]);
    given(subscriptionDecider, run([], start({ ...terms, overage: 'soft' }))).when(limit).then([]);
    const reactivate: SubscriptionCommand = { type: 'Reactivate', periodStart: at, cause: 'operator:op', at };
    given(subscriptionDecider, [...started, ...limited]).when(reactivate).then([{ type: 'plans.SubscriptionReactivated', data: { userId: 'u1', periodStart: at, cause: 'operator:op', reactivatedAt: at } }]);
    given(subscriptionDecider, started).when(reactivate).then([]);
  });

  it('adds a grant once by id; reactivation is left to metering, which knows what earlier periods drew from each grant', () => {
    const limited = run(started, { type: 'MarkLimited', periodStart: at, usedBytes: 11n * MiB, cause: 'allowance_spent', at });
    const grant = (grantId: string, bytes: bigint): SubscriptionCommand => ({ type: 'AddGrant', grantId, bytes, expiresAt: null, by: 'user:op', at });
    const added = { type: 'plans.GrantAdded', data: { userId: 'u1', grantId: 'g1', bytes: 10n * MiB, expiresAt: null, by: 'user:op', grantedAt: at } } as const;
    given(subscriptionDecider, [...started, ...limited]).when(grant('g1', 10n * MiB)).then([added]);
    given(subscriptionDecider, [...started, ...limited]).when(grant('g2', 1n)).then([{ ...added, data: { ...added.data, grantId: 'g2', bytes: 1n } }]);
    given(subscriptionDecider, [...started, added]).when(grant('g1', 10n * MiB)).then([]);
    given(subscriptionDecider, [...started, added]).when(grant('g1', 5n)).thenError('grant_conflict');
    given(subscriptionDecider).when(grant('g1', 5n)).thenError('subscription_not_found');
  });

  it('expires once at its expiry, into the next plan when one is given', () => {
    const expiresAt = new Date('2026-05-01T10:00:00Z');
    const withNext = run([], start({ ...terms, resetStrategy: 'none', nextPlanId: 'free' }));
    const free: PlanTerms = { ...terms, allowanceBytes: MiB, validity: { kind: 'none' }, resetStrategy: 'day' };
    const expire: SubscriptionCommand = { type: 'Expire', expiresAt, next: { planId: 'free', terms: free }, timeZone: 'UTC', at: expiresAt };
    const events = run(withNext, expire);
    expect(events.map((e) => e.type)).toEqual(['plans.SubscriptionExpired', 'plans.SubscriptionStarted']);
    expect(events[0]!.data).toEqual({ userId: 'u1', planId: 'basic', expiresAt, nextPlanId: 'free', cause: 'validity_ended', expiredAt: expiresAt });
    expect(events[1]!.data).toMatchObject({ planId: 'free', cause: 'next_plan', by: 'system', startsAt: expiresAt, periodStart: expiresAt, periodEnd: new Date('2026-05-02T00:00:00Z'), expiresAt: null });
    given(subscriptionDecider, [...withNext, ...events]).when(expire).then([]);
    given(subscriptionDecider, withNext).when({ ...expire, at: new Date(expiresAt.getTime() - 1) }).thenError('not_expired');
    given(subscriptionDecider, withNext).when({ ...expire, next: null, nextCause: 'next_plan_retired' }).then([
      { type: 'plans.SubscriptionExpired', data: { userId: 'u1', planId: 'basic', expiresAt, nextPlanId: null, cause: 'next_plan_retired', expiredAt: expiresAt } },
    ]);
  });

  it('on hold: the clock starts at first traffic, or when the hold times out; only once', () => {
    const held = run([], start({ ...terms, validity: { kind: 'on_hold', days: 30, timeoutDays: 7 } }));
    expect(held[0]!.data).toMatchObject({ status: 'on_hold', periodStart: null, periodEnd: null, expiresAt: null, onHoldUntil: new Date('2026-02-07T10:00:00Z') });
    const traffic = new Date('2026-02-02T12:00:00Z');
    const activated = run(held, { type: 'Activate', cause: 'first_traffic', trafficAt: traffic, timeZone: 'UTC', at: traffic });
    expect(activated).toEqual([
      { type: 'plans.SubscriptionActivated', data: { userId: 'u1', planId: 'basic', cause: 'first_traffic', clockStart: traffic, periodStart: traffic, periodEnd: new Date('2026-03-02T00:00:00Z'), timeZone: 'UTC', expiresAt: new Date('2026-03-04T12:00:00Z'), activatedAt: traffic } },
    ]);
    given(subscriptionDecider, [...held, ...activated]).when({ type: 'Activate', cause: 'first_traffic', trafficAt: traffic, timeZone: 'UTC', at: traffic }).then([]);
    given(subscriptionDecider, held).when({ type: 'Activate', cause: 'on_hold_timeout', timeZone: 'UTC', at: traffic }).thenError('hold_not_over');
    const timedOut = run(held, { type: 'Activate', cause: 'on_hold_timeout', timeZone: 'UTC', at: new Date('2026-02-09T00:00:00Z') });
    expect(timedOut[0]!.data).toMatchObject({ cause: 'on_hold_timeout', clockStart: new Date('2026-02-07T10:00:00Z') });
  });

  it('disables and enables once each; a new grant of a plan by an operator lifts a suspension', () => {
    const disabled = run(started, { type: 'Disable', reason: 'chargeback', by: 'user:op', at });
    expect(disabled).toEqual([{ type: 'plans.SubscriptionDisabled', data: { userId: 'u1', reason: 'chargeback', by: 'user:op', disabledAt: at } }]);
    given(subscriptionDecider, [...started, ...disabled]).when({ type: 'Disable', reason: 'again', by: 'user:op', at }).then([]);
    given(subscriptionDecider, [...started, ...disabled]).when({ type: 'Enable', reason: 'paid', by: 'user:op', at }).then([{ type: 'plans.SubscriptionEnabled', data: { userId: 'u1', reason: 'paid', by: 'user:op', enabledAt: at } }]);
    given(subscriptionDecider, started).when({ type: 'Enable', reason: 'paid', by: 'user:op', at }).then([]);
    const state = fold(subscriptionDecider, subscriptionDecider.initialState, [...started, ...disabled, ...run([...started, ...disabled], start())]);
    expect(state.disabled).toBeNull();
  });

  it('past due: marked once per grace (a second failed invoice buys no time), keeps access, holds the expiry back, settled by its own invoice only', () => {
    const graceUntil = new Date('2026-05-08T10:00:00Z');
    const marked = run(started, { type: 'MarkPastDue', invoiceId: 'inv-1', graceUntil, at });
    expect(marked).toEqual([{ type: 'plans.SubscriptionPastDue', data: { userId: 'u1', invoiceId: 'inv-1', graceUntil, markedAt: at } }]);
    given(subscriptionDecider, [...started, ...marked]).when({ type: 'MarkPastDue', invoiceId: 'inv-2', graceUntil: new Date('2026-06-01T00:00:00Z'), at }).then([]);
    given(subscriptionDecider, started).when({ type: 'MarkPastDue', invoiceId: 'inv-1', graceUntil: new Date(at.getTime() - 1), at }).thenError('invalid_grace');
    given(subscriptionDecider).when({ type: 'MarkPastDue', invoiceId: 'inv-1', graceUntil, at }).thenError('subscription_not_found');
    given(subscriptionDecider, [...started, ...marked]).when({ type: 'SettlePastDue', invoiceId: 'inv-2', at }).then([]);
    const settled = run([...started, ...marked], { type: 'SettlePastDue', invoiceId: 'inv-1', at });
    expect(settled).toEqual([{ type: 'plans.SubscriptionPastDueSettled', data: { userId: 'u1', invoiceId: 'inv-1', settledAt: at } }]);
    given(subscriptionDecider, [...started, ...marked, ...settled]).when({ type: 'SettlePastDue', invoiceId: 'inv-1', at }).then([]);

    const pastDue = fold(subscriptionDecider, subscriptionDecider.initialState, [...started, ...marked]);
    expect(statusOf(pastDue)).toBe('past_due');
    // The period still rolls; the expiry waits for billing (it disables when the grace ends, or a payment extends).
    const afterExpiry = { ...pastDue, period: { start: new Date('2026-04-30T00:00:00Z'), end: new Date('2026-05-31T00:00:00Z') } };
    expect(dueAt(afterExpiry, new Date('2026-05-02T00:00:00Z'))).toBeNull();
    expect(nextDueAt({ phase: 'running', onHoldUntil: null, expiresAt: pastDue.expiresAt, periodEnd: new Date('2026-05-31T00:00:00Z'), pastDue: true })).toEqual(new Date('2026-05-31T00:00:00Z'));
    // A spent block allowance outranks past due: the status is what access reads.
    expect(statusOf({ ...pastDue, limited: true })).toBe('limited');
    expect(statusOf({ ...pastDue, disabled: { reason: 'payment_overdue' } })).toBe('disabled');
    expect(fold(subscriptionDecider, pastDue, run([...started, ...marked], start())).pastDue).toBeNull();
  });

  it('says what is due when: expiry before a roll that would pass it, a roll at the period end', () => {
    const state = fold(subscriptionDecider, subscriptionDecider.initialState, started);
    expect(dueAt(state, new Date(feb28.getTime() - 1))).toBeNull();
    expect(dueAt(state, feb28)).toEqual({ kind: 'roll', periodEnd: feb28 });
    expect(nextDueAt({ phase: 'running', onHoldUntil: null, expiresAt: state.expiresAt, periodEnd: feb28 })).toEqual(feb28);
    const late = { ...state, period: { start: new Date('2026-04-30T00:00:00Z'), end: new Date('2026-05-31T00:00:00Z') } };
    expect(dueAt(late, new Date('2026-06-01T00:00:00Z'))).toEqual({ kind: 'expire', expiresAt: new Date('2026-05-01T10:00:00Z') });
    expect(nextDueAt({ phase: 'expired', onHoldUntil: null, expiresAt: null, periodEnd: null })).toBeNull();
  });
});
