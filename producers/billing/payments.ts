/**
 * Money moving for an order: charging it with its provider (an attempt each,
 * the provider's idempotency key `<orderId>-<attempt>` so a retried call
 * after a crash charges once), recording what the provider or an operator
 * says arrived or failed (the PaymentSink the Stripe webhook calls), and
 * cancelling what was never paid. A payment recorded is settled at once
 * (fulfilment.ts); if the process dies first, the fulfilment sweep settles it.
 */
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import type { BillingDeps } from './billing-deps.js';
import type { Fulfilment } from './fulfilment.js';
import type { Invoicing } from './invoicing.js';
import { KeyedQueue } from './keyed-queue.js';
import { invoiceIdOf } from './invoice.decider.js';
import { orderDecider, type OrderState } from './order.decider.js';
import type { CouponBook } from './checkout.js';
import type { ProviderRegistry } from './providers/manual.js';
import type { PaymentSink, RecordedFailure, RecordedPayment } from './providers/payment-sink.js';

const SYSTEM: Actor = { actor: 'system:billing' };
const DAY = 86_400_000;
/** Dunning: a failed renewal charge is tried again this many days after the first failure. */
export const RETRY_AFTER_DAYS = [1, 3, 5] as const;

/** When attempt `attempt + 1` is due after attempt `attempt` failed at `failedAt`, counted from the first failure; null when none is left. */
export function nextAttemptAt(firstFailureAt: Date, attempt: number): Date | null {
  const days = RETRY_AFTER_DAYS[attempt - 1];
  return days === undefined ? null : new Date(firstFailureAt.getTime() + days * DAY);
}

/** What a user's stored payment method resolves to (payment-methods.ts). */
export interface PaymentMethodResolver {
  resolve(userId: string, paymentMethodId: string | null): Promise<{ paymentMethodId: string; provider: string; token: string } | null>;
}

/** What a manual payment's reference may be (the CLI checks it before connecting). */
export const REFERENCE = /^[\x21-\x7e][\x20-\x7e]{0,127}$/;

export class Payments implements PaymentSink {
  private readonly charging = new KeyedQueue();

  constructor(
    private readonly d: BillingDeps,
    private readonly providers: ProviderRegistry,
    private readonly methods: PaymentMethodResolver,
    private readonly fulfilment: Fulfilment,
    private readonly invoicing: Invoicing,
    private readonly coupons: Pick<CouponBook, 'release'> | null,
  ) {}

  /** An order that will never be paid gives its coupon use back. */
  private async releaseCoupon(state: OrderState, reason: string, now: Date): Promise<void> {
    const order = state.order;
    if (order?.coupon && this.coupons && (state.status === 'failed' || state.status === 'cancelled')) await this.coupons.release(order.coupon, order.orderId, reason, SYSTEM, now);
  }

  async load(orderId: string): Promise<OrderState> {
    return (await this.d.load(orderDecider, 'order', orderId)).state;
  }

  /**
   * Attempt `attempt` (default: the next) of a pending order. A zero total is paid at once.
   * `firstFailureAt` anchors the dunning schedule (renewals); purchases are
   * not retried: their customer is there to try again.
   */
  charge(orderId: string, opts: { retry: boolean; firstFailureAt?: Date; attempt?: number } = { retry: false }, now = new Date()): Promise<OrderState> {
    // One charge of an order at a time in this process; other processes are held off by the attempt's idempotency key at the provider.
    return this.charging.run(orderId, () => this.chargeNow(orderId, opts, now));
  }

  private async chargeNow(orderId: string, opts: { retry: boolean; firstFailureAt?: Date; attempt?: number }, now: Date): Promise<OrderState> {
    const state = await this.load(orderId);
    const order = state.order;
    if (!order) throw new DomainError('order_not_found', 'no such order');
    const attempt = opts.attempt ?? state.attempts + 1;
    // Attempt n is made once: concurrent callers that all saw n - 1 attempts make one more between them.
    if (state.status !== 'pending' || state.attempts >= attempt) return state;
    const amount = { amountMinor: order.priced.totalMinor, currency: order.priced.currency };
    if (amount.amountMinor === 0n) {
      await this.recordPayment(orderId, { provider: order.provider, providerRef: `free-${orderId}`, amount }, SYSTEM, now);
      return this.load(orderId);
    }
    const provider = this.providers.get(order.provider);
    const method = order.paymentMethodId ? await this.methods.resolve(order.userId, order.paymentMethodId) : null;
    const result = await provider.charge({
      orderId,
      userId: order.userId,
      amount,
      paymentMethod: method ? { paymentMethodId: method.paymentMethodId, token: method.token } : null,
      idempotencyKey: `${orderId}-${attempt}`,
      description: `Relaygrid order ${orderId}`,
    });
    if (result.status === 'succeeded') await this.recordPayment(orderId, { provider: provider.name, providerRef: result.providerRef, amount }, SYSTEM, now);
    else if (result.status === 'pending') {
      await this.d.decide(orderDecider, 'order', orderId, { type: 'MarkPending', attempt, provider: provider.name, providerRef: result.providerRef, instructions: result.instructions ?? null, at: now }, SYSTEM);
    } else {
      const retryable = opts.retry && result.retryable;
      await this.fail(orderId, attempt, { reason: result.reason, retryable, nextAt: retryable ? nextAttemptAt(opts.firstFailureAt ?? now, attempt) : null }, now);
    }
    return this.load(orderId);
  }

  private async fail(orderId: string, attempt: number, f: { reason: string; retryable: boolean; nextAt: Date | null }, now: Date): Promise<void> {
    const retryable = f.retryable && f.nextAt !== null;
    const { state } = await this.d.decide(orderDecider, 'order', orderId, { type: 'Fail', attempt, reason: f.reason, retryable, nextAttemptAt: f.nextAt, at: now }, SYSTEM);
    await this.releaseCoupon(state, 'order_failed', now);
    // A renewal's invoice exists before its charge: integrators hear of the failure (invoice.payment_failed).
    if (state.order?.kind === 'renewal') await this.invoicing.notePaymentFailed(invoiceIdOf(orderId), attempt, f.reason, retryable, now);
  }

  /** PaymentSink: the money arrived (a provider's webhook, a successful charge, an operator). Idempotent per providerRef. */
  async recordPayment(orderId: string, payment: RecordedPayment, actor: Actor, now = new Date()): Promise<OrderState> {
    await this.d.decide(orderDecider, 'order', orderId, { type: 'Pay', provider: payment.provider, providerRef: payment.providerRef, amountMinor: payment.amount.amountMinor, currency: payment.amount.currency, by: actor.actor, at: now }, actor);
    await this.fulfilment.settle(orderId, now);
    return this.load(orderId);
  }

  /** PaymentSink: a pending charge failed after all (Stripe's webhook). */
  async recordFailure(orderId: string, failure: RecordedFailure, _actor: Actor, now = new Date()): Promise<OrderState> {
    const state = await this.load(orderId);
    if (!state.order) throw new DomainError('order_not_found', 'no such order');
    const attempt = Math.max(state.attempts, 1);
    const retry = state.order.kind === 'renewal' && failure.retryable;
    await this.fail(orderId, attempt, { reason: failure.reason, retryable: retry, nextAt: retry ? nextAttemptAt(now, attempt) : null }, now);
    return this.load(orderId);
  }

  /** An operator saw a manual payment arrive: the full amount, with the bank's or the chain's reference. */
  async confirm(orderId: string, input: { reference?: unknown; amountMinor?: unknown }, actor: Actor, now = new Date()): Promise<OrderState> {
    const reference = input.reference;
    if (typeof reference !== 'string' || !REFERENCE.test(reference)) throw new DomainError('invalid_confirmation', 'reference: 1-128 printable ASCII characters (the transfer\'s or the transaction\'s reference)', { field: 'reference' });
    const state = await this.load(orderId);
    const order = state.order;
    if (!order) throw new DomainError('order_not_found', 'no such order');
    if (order.provider !== 'manual') throw new DomainError('order_not_manual', `the order is paid through ${order.provider}, which reports its payments itself`);
    const amount = input.amountMinor ?? Number(order.priced.totalMinor);
    if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) throw new DomainError('invalid_confirmation', 'amountMinor: a whole number of minor units', { field: 'amountMinor' });
    return this.recordPayment(orderId, { provider: 'manual', providerRef: reference, amount: { amountMinor: BigInt(amount), currency: order.priced.currency } }, actor, now);
  }

  async cancel(orderId: string, reason: string, actor: Actor, now = new Date()): Promise<OrderState> {
    const { state } = await this.d.decide(orderDecider, 'order', orderId, { type: 'Cancel', reason, by: actor.actor, at: now }, actor);
    await this.releaseCoupon(state, 'order_cancelled', now);
    if (state.order) await this.fulfilment.abandon(state.order, now);
    return state;
  }
}
