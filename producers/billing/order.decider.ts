/**
 * An order (`<ns>.evt.billing.order.<orderId>`): placed at checkout (or by
 * the renewal scheduler) with its priced lines, then `pending` while the
 * provider or an operator has the money to move, `paid`, and `fulfilled` once
 * the subscription is started or extended and the invoice issued; or `failed`
 * (no retry left), `cancelled` (never paid), `refunded` (credit notes cover
 * the whole total). The id comes from the customer and the idempotency key,
 * so a retried checkout lands on the same aggregate: the same request again
 * decides nothing, another request under the same key is refused.
 *
 *   pending ──pay──▶ paid ──fulfil──▶ fulfilled ──refund (all)──▶ refunded
 *     │ ▲                  (refund before fulfilment is refused)
 *   fail (retryable: stays pending, next attempt scheduled)
 *     ├──fail (final)──▶ failed ──pay (late)──▶ paid
 *     └──cancel──▶ cancelled
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import { pricedFields, pricedOf, type Priced } from './pricing.js';

export type OrderEventKey = 'billing.OrderPlaced' | 'billing.OrderPaymentPending' | 'billing.OrderPaid' | 'billing.OrderPaymentFailed' | 'billing.OrderFulfilled' | 'billing.OrderCancelled' | 'billing.OrderRefunded';

export const ORDER_STATUSES = ['pending', 'paid', 'fulfilled', 'failed', 'cancelled', 'refunded'] as const;
export type OrderStatus = (typeof ORDER_STATUSES)[number];

export const ORDER_KINDS = ['new', 'renewal', 'upgrade'] as const;
export type OrderKind = (typeof ORDER_KINDS)[number];

export interface PlacedOrder {
  orderId: string;
  userId: string;
  kind: OrderKind;
  planId: string;
  months: number;
  priced: Priced;
  coupon: string | null;
  provider: string;
  paymentMethodId: string | null;
  requestHash: string;
  /** Renewals know their service period when placed; purchases learn it at fulfilment. */
  period: { start: Date; end: Date } | null;
}

export interface OrderState {
  order: PlacedOrder | null;
  status: OrderStatus;
  /** Charge attempts recorded (pending or failed): the next attempt's number is attempts + 1. */
  attempts: number;
  /** The last attempt recorded as failed. */
  failedAttempt: number;
  providerRef: string | null;
  paidAt: Date | null;
  nextAttemptAt: Date | null;
  fulfilled: { invoiceId: string; periodStart: Date; periodEnd: Date } | null;
  refundedMinor: bigint;
  creditNotes: readonly string[];
}

export type OrderCommand =
  | { type: 'Place'; order: PlacedOrder; by: string; at: Date }
  | { type: 'MarkPending'; attempt: number; provider: string; providerRef: string | null; instructions: string | null; at: Date }
  | { type: 'Pay'; provider: string; providerRef: string; amountMinor: bigint; currency: string; by: string; at: Date }
  | { type: 'Fail'; attempt: number; reason: string; retryable: boolean; nextAttemptAt: Date | null; at: Date }
  | { type: 'Fulfil'; invoiceId: string; action: 'started' | 'extended'; periodStart: Date; periodEnd: Date; at: Date }
  | { type: 'Cancel'; reason: string; by: string; at: Date }
  | { type: 'Refund'; creditNoteId: string; amountMinor: bigint; providerRef: string; reason: string; by: string; at: Date };

type E = DomainEvent<OrderEventKey>;

function placed(order: PlacedOrder, by: string, at: Date): E {
  const p = order.priced;
  return {
    type: 'billing.OrderPlaced',
    data: {
      orderId: order.orderId,
      userId: order.userId,
      kind: order.kind,
      planId: order.planId,
      months: order.months,
      ...pricedFields(p),
      coupon: order.coupon,
      provider: order.provider,
      paymentMethodId: order.paymentMethodId,
      requestHash: order.requestHash,
      periodStart: order.period?.start ?? null,
      periodEnd: order.period?.end ?? null,
      by,
      placedAt: at,
    },
  };
}

function decide(command: OrderCommand, state: OrderState): E[] {
  const { at } = command;
  if (command.type === 'Place') {
    if (state.order) {
      if (state.order.requestHash === command.order.requestHash) return [];
      throw new DomainError('idempotency_key_reused', 'this Idempotency-Key was used for another request: use a new key for a new order', { field: 'Idempotency-Key' });
    }
    return [placed(command.order, command.by, at)];
  }
  const order = state.order;
  if (!order) throw new DomainError('order_not_found', 'no such order');
  const { orderId, userId } = order;
  const total = order.priced.totalMinor;
  switch (command.type) {
    case 'MarkPending':
      if (state.status !== 'pending' || command.attempt <= state.attempts) return [];
      return [{ type: 'billing.OrderPaymentPending', data: { orderId, userId, provider: command.provider, providerRef: command.providerRef, instructions: command.instructions, attempt: command.attempt, pendingAt: at } }];
    case 'Pay': {
      if (state.paidAt) {
        if (state.providerRef === command.providerRef) return [];
        throw new DomainError('order_already_paid', `the order was paid already (reference ${state.providerRef ?? '?'})`);
      }
      if (state.status === 'cancelled') throw new DomainError('order_cancelled', 'the order was cancelled: refund this payment instead');
      if (command.currency !== order.priced.currency || command.amountMinor !== total) {
        throw new DomainError('amount_mismatch', `the order is ${total} ${order.priced.currency} (minor units), the payment ${command.amountMinor} ${command.currency}`, { field: 'amountMinor' });
      }
      return [{ type: 'billing.OrderPaid', data: { orderId, userId, amountMinor: command.amountMinor, currency: command.currency, provider: command.provider, providerRef: command.providerRef, by: command.by, paidAt: at } }];
    }
    case 'Fail': {
      // Idempotent by attempt: a failure is recorded once (the charge call's answer and the provider's webhook may both tell it).
      if (state.status !== 'pending' || command.attempt <= state.failedAttempt) return [];
      return [{ type: 'billing.OrderPaymentFailed', data: { orderId, userId, attempt: command.attempt, reason: command.reason, retryable: command.retryable, nextAttemptAt: command.retryable ? command.nextAttemptAt : null, failedAt: at } }];
    }
    case 'Fulfil':
      if (state.fulfilled) return [];
      if (state.status !== 'paid') throw new DomainError('order_not_paid', `the order is ${state.status}`);
      return [{ type: 'billing.OrderFulfilled', data: { orderId, userId, invoiceId: command.invoiceId, action: command.action, periodStart: command.periodStart, periodEnd: command.periodEnd, fulfilledAt: at } }];
    case 'Cancel':
      if (state.status === 'cancelled') return [];
      if (state.status !== 'pending' && state.status !== 'failed') throw new DomainError('order_not_cancellable', `a ${state.status} order cannot be cancelled${state.paidAt ? ': refund it' : ''}`);
      return [{ type: 'billing.OrderCancelled', data: { orderId, userId, reason: command.reason, by: command.by, cancelledAt: at } }];
    case 'Refund': {
      if (state.creditNotes.includes(command.creditNoteId)) return [];
      if (state.status !== 'fulfilled') throw new DomainError('order_not_refundable', `a ${state.status} order cannot be refunded${state.status === 'paid' ? ' until it is fulfilled' : ''}`);
      const left = total - state.refundedMinor;
      if (command.amountMinor <= 0n || command.amountMinor > left) throw new DomainError('invalid_refund', `amountMinor: must be 1 to ${left} (what is left to refund)`, { field: 'amountMinor' });
      return [
        {
          type: 'billing.OrderRefunded',
          data: { orderId, userId, creditNoteId: command.creditNoteId, amountMinor: command.amountMinor, currency: order.priced.currency, providerRef: command.providerRef, reason: command.reason, by: command.by, refundedAt: at },
        },
      ];
    }
  }
}

function evolve(state: OrderState, event: E): OrderState {
  switch (event.type) {
    case 'billing.OrderPlaced': {
      const d = event.data;
      const order: PlacedOrder = {
        orderId: d.orderId,
        userId: d.userId,
        kind: d.kind as OrderKind,
        planId: d.planId,
        months: d.months,
        priced: pricedOf(d),
        coupon: d.coupon,
        provider: d.provider,
        paymentMethodId: d.paymentMethodId,
        requestHash: d.requestHash,
        period: d.periodStart && d.periodEnd ? { start: d.periodStart, end: d.periodEnd } : null,
      };
      return { ...initialState, order };
    }
    case 'billing.OrderPaymentPending':
      return { ...state, attempts: Math.max(state.attempts, event.data.attempt), providerRef: event.data.providerRef ?? state.providerRef, nextAttemptAt: null };
    case 'billing.OrderPaid':
      return { ...state, status: 'paid', providerRef: event.data.providerRef, paidAt: event.data.paidAt, nextAttemptAt: null };
    case 'billing.OrderPaymentFailed': {
      const d = event.data;
      return { ...state, attempts: Math.max(state.attempts, d.attempt), failedAttempt: d.attempt, status: d.retryable && d.nextAttemptAt ? 'pending' : 'failed', nextAttemptAt: d.retryable ? d.nextAttemptAt : null };
    }
    case 'billing.OrderFulfilled': {
      const d = event.data;
      return { ...state, status: 'fulfilled', fulfilled: { invoiceId: d.invoiceId, periodStart: d.periodStart, periodEnd: d.periodEnd } };
    }
    case 'billing.OrderCancelled':
      return { ...state, status: 'cancelled', nextAttemptAt: null };
    case 'billing.OrderRefunded': {
      const refundedMinor = state.refundedMinor + event.data.amountMinor;
      return { ...state, refundedMinor, creditNotes: [...state.creditNotes, event.data.creditNoteId], status: state.order && refundedMinor >= state.order.priced.totalMinor ? 'refunded' : state.status };
    }
  }
}

const initialState: OrderState = { order: null, status: 'pending', attempts: 0, failedAttempt: 0, providerRef: null, paidAt: null, nextAttemptAt: null, fulfilled: null, refundedMinor: 0n, creditNotes: [] };

export const orderDecider: Decider<OrderState, OrderCommand, OrderEventKey> = { initialState, decide, evolve };
