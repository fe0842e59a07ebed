/**
 * What a paid order does: its invoice is issued and paid, the subscription
 * started (a purchase) or extended (more months of the running plan, a
 * renewal), and the order marked fulfilled. Every step is idempotent by the
 * order — the invoice's id is derived from it, plans' Start takes it as the
 * request id, Extend remembers it — so `settle` may be run again after a crash
 * at any point (the fulfilment sweep does) and finishes the work once.
 *
 * The service period is decided once, when the invoice is drafted, and read
 * back from the invoice afterwards: recomputing it after the extension would
 * extend from the new expiry a second time.
 */
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import { addLocalDays, addLocalMonths, localDayOfMonth } from '../plans/periods.js';
import type { PlanSubscriptions } from '../plans/subscriptions.js';
import type { SubscriptionState } from '../plans/subscription.decider.js';
import type { BillingDeps } from './billing-deps.js';
import { invoiceIdOf } from './invoice.decider.js';
import type { Invoicing } from './invoicing.js';
import { orderDecider, type PlacedOrder } from './order.decider.js';
import { renewalOrderId } from './renewals.js';

const SYSTEM: Actor = { actor: 'system:billing' };

/** The months an order pays for: after the running plan's expiry when it extends it, else from `at`. */
export function servicePeriod(order: PlacedOrder, sub: SubscriptionState, timeZone: string, at: Date): { start: Date; end: Date } {
  if (order.period) return order.period;
  const extends_ = sub.phase === 'running' && sub.planId === order.planId && sub.expiresAt !== null && sub.expiresAt.getTime() > at.getTime();
  if (extends_ && sub.expiresAt) {
    return { start: sub.expiresAt, end: addLocalMonths(sub.expiresAt, order.months, timeZone, anchorDay(sub.startsAt, sub.expiresAt, timeZone)) };
  }
  return { start: at, end: addLocalMonths(at, order.months, timeZone) };
}

/**
 * The day of the month more months are counted on from `expiresAt`. Months
 * bought from the start day keep it (a 31st stays a 31st after February:
 * periods.ts addLocalMonths); an expiry off that day (a grant of N days)
 * counts from its own day, or one month bought would run from, say, Mar 2 to
 * Apr 30.
 */
export function anchorDay(startsAt: Date | null, expiresAt: Date, timeZone: string): number | undefined {
  if (!startsAt) return undefined;
  const start = localDayOfMonth(startsAt, timeZone);
  const day = localDayOfMonth(expiresAt, timeZone);
  const lastOfMonth = localDayOfMonth(addLocalDays(expiresAt, 1, timeZone), timeZone) === 1;
  return day === start || (day < start && lastOfMonth) ? start : undefined;
}

export class Fulfilment {
  constructor(
    private readonly d: BillingDeps,
    private readonly invoicing: Invoicing,
    private readonly subscriptions: PlanSubscriptions,
  ) {}

  /** The customer's zone; a forgotten customer's subscription runs on in the zone it had. */
  private async zoneOf(userId: string, sub: SubscriptionState): Promise<string> {
    return this.subscriptions.timeZoneOf(userId).catch((err: unknown) => {
      if (err instanceof DomainError && err.code === 'user_forgotten') return sub.timeZone;
      throw err;
    });
  }

  /** Finishes a paid order (a no-op for any other). Returns whether it is fulfilled now. */
  async settle(orderId: string, now = new Date()): Promise<boolean> {
    const { state } = await this.d.load(orderDecider, 'order', orderId);
    const order = state.order;
    if (!order) throw new DomainError('order_not_found', 'no such order');
    if (state.status === 'fulfilled' || state.status === 'refunded') return true;
    if (state.status !== 'paid' || !state.providerRef) return false;
    const sub = await this.subscriptions.current(order.userId);
    const timeZone = await this.zoneOf(order.userId, sub);
    const invoice = await this.invoicing.issue(order, servicePeriod(order, sub, timeZone, state.paidAt ?? now), timeZone, now);
    await this.invoicing.markPaid(invoice.draft.invoiceId, order.provider, state.providerRef, now);
    const period = { start: invoice.draft.periodStart, end: invoice.draft.periodEnd };
    // A downgrade ordered as the next renewal moves the subscription at the expiry, not when it is paid (the sweep comes back then).
    if (order.kind === 'renewal' && sub.planId !== order.planId && period.start.getTime() > now.getTime()) return false;
    const action = await this.apply(order, sub, period, now);
    await this.d.decide(orderDecider, 'order', orderId, { type: 'Fulfil', invoiceId: invoice.draft.invoiceId, action, periodStart: period.start, periodEnd: period.end, at: now }, SYSTEM);
    return true;
  }

  /** Starts or extends the subscription for the paid period (each a no-op when this order did it already). */
  private async apply(order: PlacedOrder, sub: SubscriptionState, period: { start: Date; end: Date }, now: Date): Promise<'started' | 'extended'> {
    const { orderId, userId, planId } = order;
    if (sub.extendedBy.includes(orderId)) return 'extended';
    if (sub.requestId === orderId) return 'started';
    // Whether this order extends the plan or starts it afresh (the expiry passed unpaid), it replaces the renewal of the expiry it found.
    if (sub.expiresAt) await this.supersedeRenewal(userId, sub.expiresAt, orderId, now);
    const running = sub.phase === 'running' && sub.planId === planId && sub.expiresAt !== null && sub.expiresAt.getTime() >= period.start.getTime();
    if (running) {
      await this.subscriptions.extendForOrder(userId, { orderId, planId, expiresAt: period.end }, now);
      // A late payment of a past-due renewal lifts the mark and the suspension the grace period's end put on it.
      if (sub.pastDue) await this.subscriptions.settlePastDue(userId, sub.pastDue.invoiceId, now);
      if (sub.disabled?.reason === 'payment_overdue') await this.subscriptions.enable(userId, 'payment_received', SYSTEM, now);
      return 'extended';
    }
    await this.subscriptions.startForOrder(userId, { orderId, planId, startsAt: period.start.getTime() > now.getTime() ? now : period.start, expiresAt: period.end }, now);
    return 'started';
  }

  /**
   * A renewal that will never be paid (an operator cancelled it): its invoice
   * is voided (the number stays used), the past-due mark and the suspension
   * it caused are lifted, and the subscription runs out at its expiry like
   * one that was never renewed.
   */
  async abandon(order: PlacedOrder, now = new Date()): Promise<void> {
    if (order.kind !== 'renewal') return;
    const invoiceId = invoiceIdOf(order.orderId);
    if ((await this.invoicing.load(invoiceId)).status === 'finalized') await this.invoicing.void(invoiceId, 'renewal_cancelled', now);
    const sub = await this.subscriptions.current(order.userId);
    if (sub.pastDue?.invoiceId !== invoiceId) return;
    await this.subscriptions.settlePastDue(order.userId, invoiceId, now);
    if (sub.disabled?.reason === 'payment_overdue') await this.subscriptions.enable(order.userId, 'renewal_cancelled', SYSTEM, now);
  }

  /**
   * Another order paying from `expiresAt` on (or starting the plan again
   * after it) replaces the renewal of that expiry while it is unpaid: the renewal is cancelled and its invoice void.
   * Left open, dunning would charge the same months a second time, and a late
   * payment of it could extend nothing (the expiry is past its period), so
   * the money would sit on a paid order never fulfilled; cancelled, that
   * payment is refused (order_cancelled) instead.
   */
  private async supersedeRenewal(userId: string, expiresAt: Date, orderId: string, now: Date): Promise<void> {
    const renewalId = renewalOrderId(userId, expiresAt);
    if (renewalId === orderId) return;
    const { state } = await this.d.load(orderDecider, 'order', renewalId);
    if (!state.order || (state.status !== 'pending' && state.status !== 'failed')) return;
    const reason = `superseded by order ${orderId}`;
    await this.d.decide(orderDecider, 'order', renewalId, { type: 'Cancel', reason, by: SYSTEM.actor, at: now }, SYSTEM);
    await this.abandon(state.order, now);
  }
}
