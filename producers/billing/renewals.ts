/**
 * Renewals and dunning (docs/billing.md#renewals). A subscription whose last
 * order paid up to its expiry is renewed RENEWAL_LEAD before it: a renewal
 * order for the same months at the plan's price now, its id derived from the
 * user and the expiry it renews (so the Lago bug — two invoices for one
 * renewal — cannot happen however often the scheduler fires, in whatever
 * zone), its invoice finalized at once, charged with the default payment
 * method (or left for a manual payment). Unless paid on the spot the
 * subscription goes past_due: access stays until GRACE after the expiry;
 * failed charges are tried again after 1, 3 and 5 days; when the grace ends
 * unpaid the subscription is disabled (reason payment_overdue); a late
 * payment extends it from the old expiry, lifts the mark and the suspension.
 *
 * Each step is one `fire` of the billing scheduler, keyed by its occurrence,
 * decided on the log: a second firing (two workers, a restart mid-fire, a
 * SIGKILL between the charge and its record — the provider's idempotency key
 * is `<order>-<attempt>`) records nothing twice.
 */
import { createHash } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import type { Catalogue } from '../plans/catalogue.js';
import { addLocalMonths } from '../plans/periods.js';
import type { PlanSubscriptions } from '../plans/subscriptions.js';
import type { BillingDeps } from './billing-deps.js';
import { anchorDay, type Fulfilment } from './fulfilment.js';
import { invoiceIdOf } from './invoice.decider.js';
import type { Invoicing } from './invoicing.js';
import { orderDecider, type PlacedOrder } from './order.decider.js';
import type { PaymentMethodResolver, Payments } from './payments.js';
import { price } from './pricing.js';
import { MANUAL_PROVIDER } from './providers/manual.js';
import type { TaxRates } from './tax.js';

const SYSTEM: Actor = { actor: 'system:billing' };
const HOUR = 3_600_000;
const GIB = 1024n ** 3n;
/** How long before the expiry a renewal is ordered and charged. */
export const RENEWAL_LEAD_MS = 24 * HOUR;
/** How long after the expiry an unpaid renewal keeps access. */
export const GRACE_MS = 7 * 24 * HOUR;
/** A paid order not fulfilled this long after payment was left by a process that died: the sweep finishes it. */
export const SETTLE_AFTER_MS = 30_000;

export type BillingDue =
  | { kind: 'renew'; userId: string; expiresAt: Date; dueAt: Date }
  | { kind: 'retry'; orderId: string; attempt: number; dueAt: Date }
  | { kind: 'overdue'; userId: string; invoiceId: string; dueAt: Date }
  | { kind: 'settle'; orderId: string; dueAt: Date };

export function renewalOrderId(userId: string, expiresAt: Date): string {
  return `ord_${createHash('sha256').update(`${userId}\nrenewal\n${expiresAt.toISOString()}`).digest('hex').slice(0, 32)}`;
}

export class Renewals {
  constructor(
    private readonly d: BillingDeps,
    private readonly deps: {
      catalogue: Catalogue;
      subscriptions: PlanSubscriptions;
      payments: Payments;
      fulfilment: Fulfilment;
      invoicing: Invoicing;
      methods: PaymentMethodResolver;
      taxRates: TaxRates;
    },
  ) {}

  /** Everything billing's scheduler has to do at `now`, oldest first. */
  async due(now: Date, limit: number): Promise<BillingDue[]> {
    const db: Kysely<Database> = this.d.db;
    const renewBy = new Date(now.getTime() + RENEWAL_LEAD_MS);
    const settleBefore = new Date(now.getTime() - SETTLE_AFTER_MS);
    const rows = await sql<{ kind: BillingDue['kind']; user_id: string | null; order_id: string | null; at: Date; due_at: Date; attempt: number | null; invoice_id: string | null }>`
      select 'renew' as kind, s.user_id, null as order_id, s.expires_at as at, s.expires_at - interval '24 hours' as due_at, null::int as attempt, null as invoice_id
        from subscriptions s
        join orders o on o.user_id = s.user_id and o.status = 'fulfilled' and o.period_end = s.expires_at and o.plan_id = s.plan_id
       where s.phase = 'running' and s.expires_at <= ${renewBy}
         and not exists (select 1 from orders r where r.user_id = s.user_id and r.kind = 'renewal' and r.period_start = s.expires_at)
         and not exists (select 1 from users u where u.id = s.user_id and u.status = 'forgotten')
      union all
      -- A renewal ordered ahead (a downgrade), or by a process that died before charging it or marking the subscription past due.
      select 'renew', o.user_id, null, o.period_start, greatest(o.placed_at, o.period_start - interval '24 hours'), null, null
        from orders o join subscriptions s on s.user_id = o.user_id and s.expires_at = o.period_start
       where o.kind = 'renewal' and o.status in ('pending', 'failed') and s.phase = 'running' and s.past_due_invoice_id is null
         and o.placed_at <= ${settleBefore} and o.period_start <= ${renewBy}
      union all
      select 'retry', o.user_id, o.id, o.next_attempt_at, o.next_attempt_at, o.attempts + 1, null
        from orders o where o.status = 'pending' and o.next_attempt_at <= ${now}
      union all
      select 'overdue', s.user_id, null, s.past_due_until, s.past_due_until, null, s.past_due_invoice_id
        from subscriptions s where s.past_due_until <= ${now} and s.disabled_reason is null and s.phase = 'running'
      union all
      -- Paid and not fulfilled: a process died in between, or a downgrade waits for its period to start.
      select 'settle', o.user_id, o.id, o.paid_at, o.paid_at, null, null
        from orders o left join subscriptions s on s.user_id = o.user_id
       where o.status = 'paid' and o.paid_at <= ${settleBefore}
         and (o.kind <> 'renewal' or o.plan_id = s.plan_id or o.period_start <= ${now})
      order by due_at limit ${limit}`.execute(db);
    return rows.rows.map((r): BillingDue => {
      switch (r.kind) {
        case 'renew':
          return { kind: 'renew', userId: r.user_id ?? '', expiresAt: r.at, dueAt: r.due_at };
        case 'retry':
          return { kind: 'retry', orderId: r.order_id ?? '', attempt: r.attempt ?? 1, dueAt: r.due_at };
        case 'overdue':
          return { kind: 'overdue', userId: r.user_id ?? '', invoiceId: r.invoice_id ?? '', dueAt: r.due_at };
        case 'settle':
          return { kind: 'settle', orderId: r.order_id ?? '', dueAt: r.due_at };
      }
    });
  }

  async fire(item: BillingDue, now = new Date()): Promise<void> {
    switch (item.kind) {
      case 'renew':
        await this.renew(item.userId, item.expiresAt, now);
        return;
      case 'retry':
        await this.retry(item.orderId, item.attempt, now);
        return;
      case 'overdue':
        await this.overdue(item.userId, item.invoiceId, now);
        return;
      case 'settle':
        await this.deps.fulfilment.settle(item.orderId, now);
        return;
    }
  }

  /** The renewal of the subscription expiring at `expiresAt`: ordered, invoiced and charged once. */
  async renew(userId: string, expiresAt: Date, now = new Date()): Promise<string | null> {
    const sub = await this.deps.subscriptions.current(userId);
    // The subscription moved on (another plan, an operator's grant, already renewed): nothing to renew.
    if (sub.phase !== 'running' || !sub.planId || sub.expiresAt?.getTime() !== expiresAt.getTime()) return null;
    const orderId = renewalOrderId(userId, expiresAt);
    let { state } = await this.d.load(orderDecider, 'order', orderId);
    if (!state.order) {
      const last = await this.d.db.selectFrom('orders').select(['months', 'tax_country', 'period_start']).where('user_id', '=', userId).where('status', '=', 'fulfilled').where('period_end', '=', expiresAt).executeTakeFirst();
      if (!last) return null;
      const plan = await this.deps.catalogue.current(sub.planId);
      const timeZone = sub.timeZone;
      const period = { start: expiresAt, end: addLocalMonths(expiresAt, last.months, timeZone, anchorDay(sub.startsAt, expiresAt, timeZone)) };
      const rate = last.tax_country ? (this.deps.taxRates.get(last.tax_country) ?? 0) : 0;
      const overage = plan.terms.overage === 'soft' && plan.terms.overagePriceMinor !== null && last.period_start ? await this.overage(userId, last.period_start, plan.terms.overagePriceMinor, sub.timeZone) : null;
      const priced = price({ plan: { planId: sub.planId, name: plan.name, price: plan.terms.price }, months: last.months, overage, tax: { country: last.tax_country, rateBasisPoints: rate } });
      const method = await this.deps.methods.resolve(userId, null);
      const order: PlacedOrder = {
        orderId,
        userId,
        kind: 'renewal',
        planId: sub.planId,
        months: last.months,
        priced,
        coupon: null,
        provider: method?.provider ?? MANUAL_PROVIDER,
        paymentMethodId: method?.paymentMethodId ?? null,
        requestHash: `renewal:${expiresAt.toISOString()}`,
        period,
      };
      ({ state } = await this.d.decide(orderDecider, 'order', orderId, { type: 'Place', order, by: SYSTEM.actor, at: now }, SYSTEM, { assumeNew: true }));
    }
    const order = state.order;
    if (!order?.period) throw new Error(`renewal order ${orderId} has no period`);
    // The renewal's invoice is issued before the charge: integrators hear invoice.finalized, then paid or payment_failed.
    await this.deps.invoicing.issue(order, order.period, sub.timeZone, now);
    const charged = await this.deps.payments.charge(orderId, { retry: true, firstFailureAt: now, attempt: 1 }, now);
    if (charged.status !== 'fulfilled' && charged.status !== 'paid') await this.markPastDue(userId, orderId, expiresAt, now);
    return orderId;
  }

  /**
   * Traffic above the allowance in the paid period that ended at `end` (the
   * one before the period being renewed: the renewal comes before its own
   * period is over), in whole GiB rounded up: billed in arrears, once, with
   * the renewal that follows it. Grants are not charged.
   */
  private async overage(userId: string, end: Date, unitMinor: bigint, timeZone: string): Promise<{ description: string; quantity: number; unitAmountMinor: bigint } | null> {
    const previous = await this.d.db.selectFrom('orders').select(['period_start']).where('user_id', '=', userId).where('status', 'in', ['fulfilled', 'refunded']).where('period_end', '=', end).executeTakeFirst();
    if (!previous?.period_start) return null;
    const row = await sql<{ over: string }>`
      select coalesce(sum(greatest(0, u.uplink_bytes + u.downlink_bytes - u.grant_bytes - u.allowance_bytes)), 0)::text as over
        from subscription_usage u
       where u.user_id = ${userId} and u.period_start >= ${previous.period_start} and u.period_start < ${end} and u.allowance_bytes is not null`.execute(this.d.db);
    const over = BigInt(row.rows[0]?.over ?? '0');
    if (over <= 0n) return null;
    const quantity = Number((over + GIB - 1n) / GIB);
    const day = (d: Date) => new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' }).format(d);
    return { description: `Traffic above the allowance, ${day(previous.period_start)} to ${day(end)} (GiB)`, quantity, unitAmountMinor: unitMinor };
  }

  private async markPastDue(userId: string, orderId: string, expiresAt: Date, now: Date): Promise<void> {
    const graceUntil = new Date(Math.max(expiresAt.getTime(), now.getTime()) + GRACE_MS);
    await this.deps.subscriptions.markPastDue(userId, invoiceIdOf(orderId), graceUntil, now).catch((err: unknown) => {
      // Expired already (an operator's doing): the renewal stays an unpaid order, access is the plans' to decide.
      if (!(err instanceof DomainError && err.code === 'subscription_expired')) throw err;
    });
  }

  /** Dunning: attempt `attempt` of a renewal whose earlier charge failed (idempotent by attempt). */
  async retry(orderId: string, attempt: number, now = new Date()): Promise<void> {
    const { events } = await this.d.handler.store.read(this.d.subject('order', orderId), 0);
    const firstFailure = events.find((e) => e.type === 'billing.OrderPaymentFailed');
    await this.deps.payments.charge(orderId, { retry: true, attempt, firstFailureAt: firstFailure?.type === 'billing.OrderPaymentFailed' ? firstFailure.data.failedAt : now }, now);
  }

  /** The grace period of an unpaid renewal is over: access is cut until it is paid. */
  async overdue(userId: string, invoiceId: string, now = new Date()): Promise<void> {
    const sub = await this.deps.subscriptions.current(userId);
    if (sub.pastDue?.invoiceId !== invoiceId || sub.pastDue.graceUntil.getTime() > now.getTime()) return;
    await this.deps.subscriptions.disable(userId, 'payment_overdue', SYSTEM, now);
  }
}
