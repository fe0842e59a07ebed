/**
 * What billing's read models answer: a customer's orders and invoices (only
 * their own: another user's id is "not found", like an unknown one), the
 * operator's search over everyone's, and revenue per day and plan.
 */
import { Temporal } from '@js-temporal/polyfill';
import { sql, type Kysely, type Selectable } from 'kysely';
import type { CreditNoteTable, Database, InvoiceTable, OrderTable } from '../../schema/database.js';
import { DomainError } from '../decider.js';
import type { InvoiceLineView, InvoiceStatus, InvoiceView } from './invoice-view.js';

const iso = (d: Date | null) => d?.toISOString() ?? null;

export function orderView(r: Selectable<OrderTable>) {
  return {
    id: r.id,
    userId: r.user_id,
    status: r.status,
    kind: r.kind,
    planId: r.plan_id,
    months: r.months,
    currency: r.currency,
    lines: r.lines,
    subtotalMinor: r.subtotal_minor,
    taxRateBasisPoints: r.tax_rate_bp,
    taxCountry: r.tax_country,
    taxMinor: r.tax_minor,
    totalMinor: r.total_minor,
    coupon: r.coupon,
    provider: r.provider,
    paymentMethodId: r.payment_method_id,
    instructions: r.status === 'pending' ? r.instructions : null,
    attempts: r.attempts,
    failureReason: r.failure_reason,
    nextAttemptAt: iso(r.next_attempt_at),
    invoiceId: r.invoice_id,
    periodStart: iso(r.period_start),
    periodEnd: iso(r.period_end),
    refundedMinor: r.refunded_minor,
    placedAt: r.placed_at.toISOString(),
    paidAt: iso(r.paid_at),
    fulfilledAt: iso(r.fulfilled_at),
    cancelledAt: iso(r.cancelled_at),
    sequence: r.last_seq,
  };
}
export type OrderView = ReturnType<typeof orderView>;

export function invoiceView(r: Selectable<InvoiceTable>, notes: readonly Selectable<CreditNoteTable>[]): InvoiceView {
  return {
    id: r.id,
    number: r.number,
    status: r.status as InvoiceStatus,
    orderId: r.order_id,
    userId: r.user_id,
    currency: r.currency,
    lines: r.lines as InvoiceLineView[],
    subtotalMinor: r.subtotal_minor,
    taxRateBasisPoints: r.tax_rate_bp,
    taxCountry: r.tax_country,
    taxMinor: r.tax_minor,
    totalMinor: r.total_minor,
    periodStart: iso(r.period_start),
    periodEnd: iso(r.period_end),
    createdAt: r.created_at.toISOString(),
    finalizedAt: iso(r.finalized_at),
    paidAt: iso(r.paid_at),
    voidedAt: iso(r.voided_at),
    creditNotes: notes.map((n) => ({ id: n.id, number: n.number, amountMinor: n.amount_minor, reason: n.reason, issuedAt: n.issued_at.toISOString() })),
    timeZone: r.time_zone,
  };
}

export interface Search {
  userId?: string | undefined;
  status?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
  number?: string | undefined;
  limit?: number | undefined;
}

export interface RevenueRow {
  day: string;
  planId: string;
  currency: string;
  orders: number;
  grossMinor: number;
  refundedMinor: number;
  netMinor: number;
}

export class BillingQueries {
  constructor(
    private readonly db: Kysely<Database>,
    /** The seller's zone: what a revenue day is. */
    private readonly timeZone: string,
  ) {}

  async orders(s: Search): Promise<OrderView[]> {
    let q = this.db.selectFrom('orders').selectAll().orderBy('placed_at', 'desc').orderBy('id').limit(s.limit ?? 50);
    if (s.userId) q = q.where('user_id', '=', s.userId);
    if (s.status) q = q.where('status', '=', s.status);
    if (s.from) q = q.where('placed_at', '>=', s.from);
    if (s.to) q = q.where('placed_at', '<', s.to);
    return (await q.execute()).map(orderView);
  }

  /** One order; `userId` set: it must be theirs. */
  async order(orderId: string, userId?: string): Promise<OrderView> {
    let q = this.db.selectFrom('orders').selectAll().where('id', '=', orderId);
    if (userId) q = q.where('user_id', '=', userId);
    const row = await q.executeTakeFirst();
    if (!row) throw new DomainError('order_not_found', 'no such order');
    return orderView(row);
  }

  /**
   * Who an invoice is billed to, as identity has them now: invoices carry
   * only the user's id, so forgetting the person (identity's crypto-shredding)
   * leaves the invoice's numbers and amounts and erases the name on it.
   */
  async billedTo(userId: string): Promise<{ lines: string[] }> {
    const user = await this.db.selectFrom('users').select(['email', 'display_name', 'status']).where('id', '=', userId).executeTakeFirst();
    if (!user || user.status === 'forgotten' || !user.email) return { lines: ['(personal data erased)', `Account ${userId}`] };
    return { lines: [...(user.display_name ? [user.display_name] : []), user.email, `Account ${userId}`] };
  }

  async invoices(s: Search): Promise<InvoiceView[]> {
    let q = this.db.selectFrom('invoices').selectAll().orderBy('created_at', 'desc').orderBy('id').limit(s.limit ?? 50);
    if (s.userId) q = q.where('user_id', '=', s.userId);
    if (s.status) q = q.where('status', '=', s.status);
    if (s.number) q = q.where('number', '=', s.number);
    if (s.from) q = q.where('created_at', '>=', s.from);
    if (s.to) q = q.where('created_at', '<', s.to);
    return this.withNotes(await q.execute());
  }

  async invoice(invoiceId: string, userId?: string): Promise<InvoiceView> {
    let q = this.db.selectFrom('invoices').selectAll().where('id', '=', invoiceId);
    if (userId) q = q.where('user_id', '=', userId);
    const [view] = await this.withNotes(await q.execute());
    if (!view) throw new DomainError('invoice_not_found', 'no such invoice');
    return view;
  }

  private async withNotes(rows: Selectable<InvoiceTable>[]): Promise<InvoiceView[]> {
    if (rows.length === 0) return [];
    const notes = await this.db.selectFrom('credit_notes').selectAll().where('invoice_id', 'in', rows.map((r) => r.id)).orderBy('sequence').execute();
    return rows.map((r) => invoiceView(r, notes.filter((n) => n.invoice_id === r.id)));
  }

  /** revenue() over local dates [fromDay, toDay) in the seller's zone. */
  async revenueBetweenDays(fromDay: string, toDay: string): Promise<RevenueRow[]> {
    const start = (day: string, field: string) => {
      let date: Temporal.PlainDate;
      try {
        date = Temporal.PlainDate.from(day, { overflow: 'reject' });
      } catch {
        throw new DomainError('invalid_querystring', `${field}: ${day} is not a date`, { field });
      }
      return new Date(date.toZonedDateTime({ timeZone: this.timeZone }).epochMilliseconds);
    };
    return this.revenue(start(fromDay, 'from'), start(toDay, 'to'));
  }

  /**
   * Money in per local day (the seller's zone) and plan: paid orders' totals
   * on the day they were paid, credit notes on the day they were issued.
   */
  async revenue(from: Date, to: Date): Promise<RevenueRow[]> {
    const zone = this.timeZone;
    const rows = await sql<{ day: string; plan_id: string; currency: string; orders: string; gross: string; refunded: string }>`
      with money as (
        select (o.paid_at at time zone ${zone})::date as day, o.plan_id, o.currency, 1 as orders, o.total_minor as gross, 0::bigint as refunded
          from orders o where o.paid_at >= ${from} and o.paid_at < ${to}
        union all
        select (c.issued_at at time zone ${zone})::date, o.plan_id, c.currency, 0, 0::bigint, c.amount_minor
          from credit_notes c join invoices i on i.id = c.invoice_id join orders o on o.id = i.order_id
          where c.issued_at >= ${from} and c.issued_at < ${to}
      )
      select day::text as day, plan_id, currency, sum(orders)::text as orders, sum(gross)::text as gross, sum(refunded)::text as refunded
        from money group by day, plan_id, currency order by day, plan_id, currency`.execute(this.db);
    return rows.rows.map((r) => ({ day: r.day, planId: r.plan_id, currency: r.currency, orders: Number(r.orders), grossMinor: Number(r.gross), refundedMinor: Number(r.refunded), netMinor: Number(r.gross) - Number(r.refunded) }));
  }
}
