/**
 * Changing plans mid-term (docs/billing.md#plan-changes). An upgrade (a
 * higher monthly price) takes effect now: an order for the new plan with a
 * pro-rated credit for what is left of the paid period. A downgrade takes
 * effect at the period's end: the renewal of the current expiry is ordered
 * now for the new plan (the renewal scheduler invoices and charges it when
 * it is due, the subscription moves at the expiry).
 *
 * The credit is for what was not used, by time and by bytes, whichever is
 * less: a customer who spent the allowance of a big plan and then changes
 * plans gets nothing back for it (the upgrade-use-downgrade abuse). Only the
 * tax-exclusive price that was actually kept (after refunds) is credited.
 */
import { createHash } from 'node:crypto';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import type { Catalogue } from '../plans/catalogue.js';
import { currentUsage } from '../plans/metering-queries.js';
import { checkPlanId } from '../plans/model.js';
import { addLocalMonths, localDayOfMonth } from '../plans/periods.js';
import type { PlanSubscriptions } from '../plans/subscriptions.js';
import type { BillingDeps } from './billing-deps.js';
import { MAX_MONTHS, orderIdFor } from './checkout.js';
import { mulDiv } from './money.js';
import { orderDecider, type OrderState, type PlacedOrder } from './order.decider.js';
import type { PaymentMethodResolver, Payments } from './payments.js';
import { price } from './pricing.js';
import { MANUAL_PROVIDER } from './providers/manual.js';
import { renewalOrderId } from './renewals.js';
import { taxFor, type TaxRates } from './tax.js';

export interface PlanChangeInput {
  planId?: unknown;
  months?: unknown;
  paymentMethodId?: unknown;
  country?: unknown;
}

/** What is left of a paid period at `now`, as a share of the price kept: min(time left, bytes left). */
export function unusedCredit(kept: bigint, period: { start: Date; end: Date }, now: Date, usage: { used: bigint; total: bigint | null }): bigint {
  const length = BigInt(period.end.getTime() - period.start.getTime());
  const left = BigInt(Math.max(0, period.end.getTime() - now.getTime()));
  if (length <= 0n || kept <= 0n) return 0n;
  const byTime = mulDiv(kept, left, length);
  if (usage.total === null || usage.total <= 0n) return byTime;
  const unusedBytes = usage.total > usage.used ? usage.total - usage.used : 0n;
  const byBytes = mulDiv(kept, unusedBytes, usage.total);
  return byBytes < byTime ? byBytes : byTime;
}

export class PlanChanges {
  constructor(
    private readonly d: BillingDeps,
    private readonly deps: { catalogue: Catalogue; subscriptions: PlanSubscriptions; payments: Payments; methods: PaymentMethodResolver; taxRates: TaxRates },
  ) {}

  async change(userId: string, idempotencyKey: unknown, input: PlanChangeInput, actor: Actor, now = new Date()): Promise<{ orderId: string; change: 'upgrade' | 'downgrade'; state: OrderState }> {
    if (typeof idempotencyKey !== 'string' || !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) throw new DomainError('idempotency_key_required', 'send an Idempotency-Key header: a retried change with it changes once', { field: 'Idempotency-Key' });
    const planId = checkPlanId(input.planId);
    const sub = await this.deps.subscriptions.current(userId);
    const paid = sub.planId && sub.expiresAt ? await this.paidOrderCovering(userId, sub.planId, sub.expiresAt) : null;
    if (sub.phase !== 'running' || !sub.planId || !sub.expiresAt || !paid?.order || !paid.fulfilled) throw new DomainError('no_paid_subscription', 'only a running subscription bought through billing can change plans: check out the plan instead');
    if (sub.planId === planId) throw new DomainError('plan_unchanged', `you are on ${planId} already: check out more months of it instead`, { field: 'planId' });
    const [current, next] = await Promise.all([this.deps.catalogue.current(sub.planId), this.deps.catalogue.current(planId)]);
    if (next.retired) throw new DomainError('plan_retired', `plan ${planId} is retired: it takes no new subscriptions`);
    if (next.terms.price.currency !== current.terms.price.currency) throw new DomainError('currency_mismatch', `plan ${planId} is priced in ${next.terms.price.currency}, yours in ${current.terms.price.currency}`);
    const months = input.months ?? paid.order.months;
    if (typeof months !== 'number' || !Number.isInteger(months) || months < 1 || months > MAX_MONTHS) throw new DomainError('invalid_checkout', `months: a whole number from 1 to ${MAX_MONTHS}`, { field: 'months' });
    const method = await this.deps.methods.resolve(userId, typeof input.paymentMethodId === 'string' ? input.paymentMethodId : null);
    const tax = taxFor(this.deps.taxRates, input.country ?? paid.order.priced.taxCountry, 'invalid_checkout');
    const upgrade = next.terms.price.amountMinor > current.terms.price.amountMinor;
    const requestHash = createHash('sha256').update(JSON.stringify(['change', planId, months, method?.paymentMethodId ?? null, tax.country])).digest('hex');
    const plan = { planId, name: next.name, price: next.terms.price };
    const common = { userId, planId, months, coupon: null, provider: method?.provider ?? MANUAL_PROVIDER, paymentMethodId: method?.paymentMethodId ?? null, requestHash };
    if (!upgrade) {
      // The renewal of the current expiry, ordered now for the new plan: its id is the renewal's, so the scheduler takes it up as it is.
      const orderId = renewalOrderId(userId, sub.expiresAt);
      const existing = (await this.d.load(orderDecider, 'order', orderId)).state;
      if (existing.order && existing.order.requestHash !== requestHash) throw new DomainError('renewal_already_ordered', 'the renewal of this period is ordered already: change plans after it');
      const start = sub.expiresAt;
      const order: PlacedOrder = { ...common, orderId, kind: 'renewal', priced: price({ plan, months, tax }), period: { start, end: addLocalMonths(start, months, sub.timeZone, localDayOfMonth(start, sub.timeZone)) } };
      const { state } = await this.d.decide(orderDecider, 'order', orderId, { type: 'Place', order, by: actor.actor, at: now }, actor);
      return { orderId, change: 'downgrade', state };
    }
    const orderId = orderIdFor(userId, idempotencyKey);
    const kept = paid.order.priced.totalMinor > 0n ? mulDiv(paid.order.priced.subtotalMinor, paid.order.priced.totalMinor - paid.refundedMinor, paid.order.priced.totalMinor) : 0n;
    const credit = unusedCredit(kept, { start: paid.fulfilled.periodStart, end: paid.fulfilled.periodEnd }, now, await this.usageOf(userId, now));
    const priced = price({ plan, months, tax, reductions: [{ kind: 'proration', description: `Unused part of ${current.name}`, amountMinor: credit }] });
    const order: PlacedOrder = { ...common, orderId, kind: 'upgrade', priced, period: { start: now, end: addLocalMonths(now, months, sub.timeZone) } };
    await this.d.decide(orderDecider, 'order', orderId, { type: 'Place', order, by: actor.actor, at: now }, actor, { assumeNew: true, maxAttempts: 3 });
    // Fulfilled, the upgrade supersedes a renewal of the old expiry still waiting for its money (fulfilment.ts).
    const state = await this.deps.payments.charge(orderId, { retry: false, attempt: 1 }, now);
    return { orderId, change: 'upgrade', state };
  }

  /** The fulfilled order whose period ends at the subscription's expiry (the one paying for now). */
  private async paidOrderCovering(userId: string, planId: string, expiresAt: Date): Promise<OrderState | null> {
    const row = await this.d.db.selectFrom('orders').select('id').where('user_id', '=', userId).where('plan_id', '=', planId).where('status', 'in', ['fulfilled', 'refunded']).where('period_end', '=', expiresAt).executeTakeFirst();
    return row ? (await this.d.load(orderDecider, 'order', row.id)).state : null;
  }

  private async usageOf(userId: string, now: Date): Promise<{ used: bigint; total: bigint | null }> {
    const row = await this.d.db.selectFrom(currentUsage(now).as('c')).select(['c.used', 'c.total']).where('c.user_id', '=', userId).executeTakeFirst();
    return { used: BigInt(row?.used ?? '0'), total: row?.total ? BigInt(row.total) : null };
  }
}
