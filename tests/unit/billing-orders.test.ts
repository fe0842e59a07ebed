/** Given/when/then for orders: checkout's idempotency, payments and their failures, fulfilment, cancellation and refunds; and the service period an order pays for. */
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { servicePeriod } from '../../producers/billing/fulfilment.js';
import { orderDecider, type OrderCommand, type OrderEventKey, type PlacedOrder } from '../../producers/billing/order.decider.js';
import { price } from '../../producers/billing/pricing.js';
import { fold } from '../../producers/decider.js';
import type { PlanTerms } from '../../producers/plans/model.js';
import { subscriptionDecider, type SubscriptionCommand, type SubscriptionEventKey, type SubscriptionState } from '../../producers/plans/subscription.decider.js';
import { given } from '../support/decider-spec.js';

type E = DomainEvent<OrderEventKey>;

const at = new Date('2026-12-07T10:00:00Z');
const later = new Date('2026-12-07T10:05:00Z');
// 2 × 11.99 EUR, 19% German VAT: 23.98 + 4.56 (455.62 rounded) = 28.54.
const priced = price({ plan: { planId: 'pro', name: 'Pro', price: { amountMinor: 1199n, currency: 'EUR' } }, months: 2, tax: { country: 'DE', rateBasisPoints: 1900 } });
const order: PlacedOrder = { orderId: 'ord_1', userId: 'u1', kind: 'new', planId: 'pro', months: 2, priced, coupon: null, provider: 'manual', paymentMethodId: null, requestHash: 'hash-a', period: null };

const placedEvent: E = {
  type: 'billing.OrderPlaced',
  data: {
    orderId: 'ord_1', userId: 'u1', kind: 'new', planId: 'pro', months: 2, currency: 'EUR',
    lines: [{ kind: 'plan', description: 'Pro, 2 months', quantity: 2, unitAmountMinor: 1199n, amountMinor: 2398n }],
    subtotalMinor: 2398n, taxRateBasisPoints: 1900, taxCountry: 'DE', taxMinor: 456n, totalMinor: 2854n,
    coupon: null, provider: 'manual', paymentMethodId: null, requestHash: 'hash-a', periodStart: null, periodEnd: null, by: 'user:u1', placedAt: at,
  },
};
const pending = (attempt: number, providerRef: string | null = null): E => ({ type: 'billing.OrderPaymentPending', data: { orderId: 'ord_1', userId: 'u1', provider: 'manual', providerRef, instructions: 'IBAN …', attempt, pendingAt: at } });
const paid = (providerRef = 'bank-77'): E => ({ type: 'billing.OrderPaid', data: { orderId: 'ord_1', userId: 'u1', amountMinor: 2854n, currency: 'EUR', provider: 'manual', providerRef, by: 'user:op', paidAt: later } });
const failed = (attempt: number, nextAttemptAt: Date | null, retryable = nextAttemptAt !== null): E => ({ type: 'billing.OrderPaymentFailed', data: { orderId: 'ord_1', userId: 'u1', attempt, reason: 'card_declined', retryable, nextAttemptAt, failedAt: at } });
const fulfilled: E = { type: 'billing.OrderFulfilled', data: { orderId: 'ord_1', userId: 'u1', invoiceId: 'inv_1', action: 'started', periodStart: later, periodEnd: new Date('2027-02-07T10:05:00Z'), fulfilledAt: later } };
const cancelled: E = { type: 'billing.OrderCancelled', data: { orderId: 'ord_1', userId: 'u1', reason: 'customer', by: 'user:u1', cancelledAt: at } };
const refunded = (creditNoteId: string, amountMinor: bigint): E => ({ type: 'billing.OrderRefunded', data: { orderId: 'ord_1', userId: 'u1', creditNoteId, amountMinor, currency: 'EUR', providerRef: 'bank-77', reason: 'goodwill', by: 'user:op', refundedAt: later } });

const place = (requestHash = 'hash-a'): OrderCommand => ({ type: 'Place', order: { ...order, requestHash }, by: 'user:u1', at });
const markPending = (attempt: number): OrderCommand => ({ type: 'MarkPending', attempt, provider: 'manual', providerRef: null, instructions: 'IBAN …', at });
const pay = (providerRef = 'bank-77', amountMinor = 2854n, currency = 'EUR'): OrderCommand => ({ type: 'Pay', provider: 'manual', providerRef, amountMinor, currency, by: 'user:op', at: later });
const fail = (attempt: number, nextAttemptAt: Date | null, retryable = nextAttemptAt !== null): OrderCommand => ({ type: 'Fail', attempt, reason: 'card_declined', retryable, nextAttemptAt, at });
const fulfil: OrderCommand = { type: 'Fulfil', invoiceId: 'inv_1', action: 'started', periodStart: later, periodEnd: new Date('2027-02-07T10:05:00Z'), at: later };
const cancel: OrderCommand = { type: 'Cancel', reason: 'customer', by: 'user:u1', at };
const refund = (creditNoteId: string, amountMinor: bigint): OrderCommand => ({ type: 'Refund', creditNoteId, amountMinor, providerRef: 'bank-77', reason: 'goodwill', by: 'user:op', at: later });
const stateOf = (history: E[]) => fold(orderDecider, orderDecider.initialState, history);

describe('order: place', () => {
  it('places the priced order once; the same request again decides nothing', () => {
    given(orderDecider).when(place()).then([placedEvent]);
    given(orderDecider, [placedEvent]).when(place()).then([]);
  });

  it('refuses another request under the same idempotency key', () => {
    given(orderDecider, [placedEvent]).when(place('hash-b')).thenError('idempotency_key_reused');
  });

  it('folds back to the order it placed, a renewal keeping its service period', () => {
    expect(stateOf([placedEvent])).toMatchObject({ order, status: 'pending', attempts: 0, paidAt: null });
    const period = { start: new Date('2027-01-01T00:00:00Z'), end: new Date('2027-02-01T00:00:00Z') };
    const renewal = orderDecider.decide({ type: 'Place', order: { ...order, kind: 'renewal', period }, by: 'system:billing', at }, orderDecider.initialState);
    expect(renewal[0]?.data).toMatchObject({ kind: 'renewal', periodStart: period.start, periodEnd: period.end });
    expect(stateOf(renewal).order?.period).toEqual(period);
  });

  it('refuses every other command on an order never placed', () => {
    for (const command of [markPending(1), pay(), fail(1, null), fulfil, cancel, refund('cn_1', 1n)]) given(orderDecider).when(command).thenError('order_not_found');
  });
});

describe('order: payment', () => {
  it('records a pending attempt once per attempt', () => {
    given(orderDecider, [placedEvent]).when(markPending(1)).then([pending(1)]);
    given(orderDecider, [placedEvent, pending(1)]).when(markPending(1)).then([]);
    given(orderDecider, [placedEvent, pending(1)]).when(markPending(2)).then([pending(2)]);
    given(orderDecider, [placedEvent, paid()]).when(markPending(1)).then([]);
  });

  it('takes the exact total in the order currency, nothing else', () => {
    given(orderDecider, [placedEvent]).when(pay()).then([paid()]);
    given(orderDecider, [placedEvent]).when(pay('bank-77', 2853n)).thenError('amount_mismatch');
    given(orderDecider, [placedEvent]).when(pay('bank-77', 2855n)).thenError('amount_mismatch');
    given(orderDecider, [placedEvent]).when(pay('bank-77', 2854n, 'USD')).thenError('amount_mismatch');
  });

  it('the same payment again decides nothing; another one is refused', () => {
    given(orderDecider, [placedEvent, paid()]).when(pay()).then([]);
    given(orderDecider, [placedEvent, paid()]).when(pay('bank-78')).thenError('order_already_paid');
    given(orderDecider, [placedEvent, paid(), fulfilled]).when(pay()).then([]);
    given(orderDecider, [placedEvent, paid(), fulfilled]).when(pay('bank-78')).thenError('order_already_paid');
  });

  it('refuses a payment of a cancelled order', () => {
    given(orderDecider, [placedEvent, cancelled]).when(pay()).thenError('order_cancelled');
  });

  it('accepts a late payment of a failed order', () => {
    given(orderDecider, [placedEvent, failed(1, null)]).when(pay()).then([paid()]);
    expect(stateOf([placedEvent, failed(1, null), paid()])).toMatchObject({ status: 'paid', providerRef: 'bank-77', paidAt: later, nextAttemptAt: null });
  });

  it('keeps the provider reference a pending attempt gave', () => {
    expect(stateOf([placedEvent, pending(1, 'pi_123')])).toMatchObject({ status: 'pending', attempts: 1, providerRef: 'pi_123' });
    expect(stateOf([placedEvent, pending(1, 'pi_123'), pending(2)]).providerRef).toBe('pi_123');
  });
});

describe('order: failed charges', () => {
  const retryAt = new Date('2026-12-08T10:00:00Z');

  it('a retryable failure with a next attempt keeps the order pending until then', () => {
    given(orderDecider, [placedEvent]).when(fail(1, retryAt)).then([failed(1, retryAt)]);
    expect(stateOf([placedEvent, failed(1, retryAt)])).toMatchObject({ status: 'pending', attempts: 1, failedAttempt: 1, nextAttemptAt: retryAt });
    // The next attempt clears the schedule.
    expect(stateOf([placedEvent, failed(1, retryAt), pending(2)])).toMatchObject({ status: 'pending', attempts: 2, nextAttemptAt: null });
  });

  it('a final failure fails the order; a non-retryable one records no next attempt', () => {
    given(orderDecider, [placedEvent]).when(fail(1, null)).then([failed(1, null)]);
    expect(stateOf([placedEvent, failed(1, null)])).toMatchObject({ status: 'failed', nextAttemptAt: null });
    given(orderDecider, [placedEvent]).when(fail(1, retryAt, false)).then([failed(1, null)]);
    // Retryable without a time for the next attempt is no retry at all.
    expect(stateOf([placedEvent, failed(1, null, true)]).status).toBe('failed');
  });

  it('records a failure once per attempt (the charge call and the webhook may both tell it)', () => {
    given(orderDecider, [placedEvent, failed(1, retryAt)]).when(fail(1, retryAt)).then([]);
    given(orderDecider, [placedEvent, failed(1, retryAt)]).when(fail(2, null)).then([failed(2, null)]);
    given(orderDecider, [placedEvent, failed(1, null)]).when(fail(2, null)).then([]);
    given(orderDecider, [placedEvent, paid()]).when(fail(1, null)).then([]);
  });
});

describe('order: fulfilment and cancellation', () => {
  it('fulfils a paid order once', () => {
    given(orderDecider, [placedEvent, paid()]).when(fulfil).then([fulfilled]);
    given(orderDecider, [placedEvent, paid(), fulfilled]).when(fulfil).then([]);
    expect(stateOf([placedEvent, paid(), fulfilled])).toMatchObject({ status: 'fulfilled', fulfilled: { invoiceId: 'inv_1', periodStart: later, periodEnd: new Date('2027-02-07T10:05:00Z') } });
  });

  it('refuses to fulfil an order that is not paid', () => {
    given(orderDecider, [placedEvent]).when(fulfil).thenError('order_not_paid');
    given(orderDecider, [placedEvent, failed(1, null)]).when(fulfil).thenError('order_not_paid');
    given(orderDecider, [placedEvent, cancelled]).when(fulfil).thenError('order_not_paid');
  });

  it('cancels a pending or failed order, once', () => {
    given(orderDecider, [placedEvent]).when(cancel).then([cancelled]);
    given(orderDecider, [placedEvent, failed(1, null)]).when(cancel).then([cancelled]);
    given(orderDecider, [placedEvent, cancelled]).when(cancel).then([]);
    expect(stateOf([placedEvent, failed(1, new Date('2026-12-08T10:00:00Z')), cancelled])).toMatchObject({ status: 'cancelled', nextAttemptAt: null });
  });

  it('refuses to cancel what was paid (it is refunded instead)', () => {
    given(orderDecider, [placedEvent, paid()]).when(cancel).thenError('order_not_cancellable');
    given(orderDecider, [placedEvent, paid(), fulfilled]).when(cancel).thenError('order_not_cancellable');
  });
});

describe('order: refunds', () => {
  const done = [placedEvent, paid(), fulfilled];

  it('refunds only a fulfilled order', () => {
    given(orderDecider, [placedEvent]).when(refund('cn_1', 100n)).thenError('order_not_refundable');
    given(orderDecider, [placedEvent, paid()]).when(refund('cn_1', 100n)).thenError('order_not_refundable');
    given(orderDecider, [placedEvent, cancelled]).when(refund('cn_1', 100n)).thenError('order_not_refundable');
  });

  it('a partial refund keeps it fulfilled; the rest makes it refunded', () => {
    given(orderDecider, done).when(refund('cn_1', 1000n)).then([refunded('cn_1', 1000n)]);
    expect(stateOf([...done, refunded('cn_1', 1000n)])).toMatchObject({ status: 'fulfilled', refundedMinor: 1000n, creditNotes: ['cn_1'] });
    given(orderDecider, [...done, refunded('cn_1', 1000n)]).when(refund('cn_2', 1854n)).then([refunded('cn_2', 1854n)]);
    expect(stateOf([...done, refunded('cn_1', 1000n), refunded('cn_2', 1854n)])).toMatchObject({ status: 'refunded', refundedMinor: 2854n, creditNotes: ['cn_1', 'cn_2'] });
  });

  it('refuses a refund over what is left, or of nothing', () => {
    given(orderDecider, done).when(refund('cn_1', 2855n)).thenError('invalid_refund');
    given(orderDecider, [...done, refunded('cn_1', 1000n)]).when(refund('cn_2', 1855n)).thenError('invalid_refund');
    given(orderDecider, done).when(refund('cn_1', 0n)).thenError('invalid_refund');
    given(orderDecider, done).when(refund('cn_1', -5n)).thenError('invalid_refund');
    given(orderDecider, [...done, refunded('cn_1', 2854n)]).when(refund('cn_2', 1n)).thenError('order_not_refundable');
  });

  it('the same credit note again decides nothing, even once all is refunded', () => {
    given(orderDecider, [...done, refunded('cn_1', 1000n)]).when(refund('cn_1', 1000n)).then([]);
    given(orderDecider, [...done, refunded('cn_1', 2854n)]).when(refund('cn_1', 2854n)).then([]);
  });
});

describe('servicePeriod', () => {
  const MiB = 1_048_576n;
  const terms: PlanTerms = { allowanceBytes: 10n * MiB, resetStrategy: 'month', validity: { kind: 'days', days: 30 }, ipLimit: 2, nodeLabels: [], inboundKinds: ['vless-reality'], price: { amountMinor: 1199n, currency: 'EUR' }, nextPlanId: null, overage: 'block', overagePriceMinor: null };
  const jan31 = new Date('2026-01-31T10:00:00Z');
  const feb28 = new Date('2026-02-28T10:00:00Z');
  /** Bought (paid until `expiresAt`), or without one granted by an operator for the plan's 30 days. */
  const subscription = (planId: string, startsAt: Date, expiresAt?: Date): SubscriptionState => {
    const start: SubscriptionCommand = expiresAt
      ? { type: 'Start', userId: 'u1', planId, terms, startsAt, timeZone: 'UTC', cause: 'order', by: 'system:billing', at: startsAt, requestId: 'ord_0', expiresAt }
      : { type: 'Start', userId: 'u1', planId, terms, startsAt, timeZone: 'UTC', cause: 'operator', by: 'user:op', at: startsAt };
    const events: DomainEvent<SubscriptionEventKey>[] = subscriptionDecider.decide(start, subscriptionDecider.initialState);
    return fold(subscriptionDecider, subscriptionDecider.initialState, events);
  };
  const purchase: PlacedOrder = { ...order, months: 1 };
  const feb10 = new Date('2026-02-10T12:00:00Z');

  it('a running subscription of the same plan is extended from its expiry, months counted on its start day', () => {
    // Started Jan 31, paid until Feb 28: one more month runs to Mar 31, not Mar 28.
    const sub = subscription('pro', jan31, feb28);
    expect(servicePeriod({ ...purchase, planId: 'pro' }, sub, 'UTC', feb10)).toEqual({ start: feb28, end: new Date('2026-03-31T10:00:00Z') });
    expect(servicePeriod({ ...purchase, planId: 'pro', months: 3 }, sub, 'UTC', feb10)).toEqual({ start: feb28, end: new Date('2026-05-31T10:00:00Z') });
  });

  it('an expiry off the start day (a grant of N days) is extended by whole months from the expiry itself', () => {
    // Granted Jan 31 for 30 days: expires Mar 2. One month more is Apr 2, not Apr 30 (the 31st clamped): 31 days, not 59.
    const granted = subscription('pro', jan31);
    expect(granted.expiresAt).toEqual(new Date('2026-03-02T10:00:00Z'));
    expect(servicePeriod({ ...purchase, planId: 'pro' }, granted, 'UTC', feb10)).toEqual({ start: new Date('2026-03-02T10:00:00Z'), end: new Date('2026-04-02T10:00:00Z') });
    // Granted Feb 1: expires Mar 3; one month more is Apr 3, not Apr 1.
    const feb1 = subscription('pro', new Date('2026-02-01T10:00:00Z'));
    expect(servicePeriod({ ...purchase, planId: 'pro' }, feb1, 'UTC', feb10)).toEqual({ start: new Date('2026-03-03T10:00:00Z'), end: new Date('2026-04-03T10:00:00Z') });
  });

  it('an expiry clamped to a short month\'s last day still counts on the start day', () => {
    // Bought Jan 30 for one month: Feb 28 (the 30th clamped). One more month is Mar 30.
    const sub = subscription('pro', new Date('2026-01-30T10:00:00Z'), feb28);
    expect(servicePeriod({ ...purchase, planId: 'pro' }, sub, 'UTC', feb10)).toEqual({ start: feb28, end: new Date('2026-03-30T10:00:00Z') });
  });

  it('otherwise the months start at the payment', () => {
    const sub = subscription('pro', jan31, feb28);
    const fromPayment = { start: feb10, end: new Date('2026-03-10T12:00:00Z') };
    // Another plan.
    expect(servicePeriod({ ...purchase, planId: 'basic' }, sub, 'UTC', feb10)).toEqual(fromPayment);
    // The plan ran out before the payment.
    const march = new Date('2026-03-02T12:00:00Z');
    expect(servicePeriod({ ...purchase, planId: 'pro' }, sub, 'UTC', march)).toEqual({ start: march, end: new Date('2026-04-02T12:00:00Z') });
    // No subscription at all.
    expect(servicePeriod(purchase, subscriptionDecider.initialState, 'UTC', feb10)).toEqual(fromPayment);
  });

  it('an order with its own period (a renewal) keeps it', () => {
    const period = { start: new Date('2026-03-01T00:00:00Z'), end: new Date('2026-04-01T00:00:00Z') };
    expect(servicePeriod({ ...purchase, planId: 'pro', period }, subscription('pro', jan31, feb28), 'UTC', feb10)).toBe(period);
  });
});
