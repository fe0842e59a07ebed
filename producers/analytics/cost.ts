/**
 * Cost analysis (GET /v1/analytics/cost-analysis). Money is integer minor
 * units with its ISO 4217 currency, and every figure is per currency: sums
 * never cross currencies (a user who paid in EUR and then in USD gets two
 * rows). Byte counts are decimal strings.
 *
 * For a user: spend per invoice period (finalized and paid invoices, net of
 * credit notes), cost per GiB over the range (net spend ÷ bytes used in the
 * range), and this calendar month (the user's zone) projected to its end at
 * the rate so far: bytes × month length ÷ time elapsed, and that many GiB at
 * the range's cost per GiB.
 *
 * For operators, per plan and currency: revenue (billing's paid orders net
 * of credit notes), MRR (running subscriptions × the plan's monthly price),
 * churn (subscriptions that expired in the range with no new one after them
 * ÷ those running at its start) and ARPU (net revenue ÷ paying users).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import type { BillingQueries } from '../billing/billing-queries.js';
import { mulDiv } from '../billing/money.js';
import { monthAround } from './buckets.js';

const GIB = 1n << 30n;

async function bytesBetween(db: Kysely<Database>, userId: string, from: Date, to: Date): Promise<bigint> {
  const { rows } = await sql<{ bytes: string }>`
    select coalesce(sum(uplink + downlink), 0)::text as bytes from analytics_usage_hourly where user_id = ${userId} and hour >= ${from} and hour < ${to}`.execute(db);
  return BigInt(rows[0]?.bytes ?? '0');
}

export async function userCost(db: Kysely<Database>, userId: string, range: { from: Date; to: Date }, timeZone: string, now = new Date()) {
  const { rows } = await sql<{ period_start: Date; period_end: Date; currency: string; invoices: string; total: string; credited: string }>`
    select period_start, period_end, currency, count(*)::text as invoices, sum(total_minor)::text as total, sum(credited_minor)::text as credited
    from invoices
    where user_id = ${userId} and status in ('finalized', 'paid') and period_start >= ${range.from} and period_start < ${range.to}
    group by period_start, period_end, currency order by period_start, currency`.execute(db);
  const periods = rows.map((r) => ({
    periodStart: r.period_start.toISOString(),
    periodEnd: r.period_end.toISOString(),
    currency: r.currency,
    invoices: Number(r.invoices),
    totalMinor: Number(r.total),
    creditedMinor: Number(r.credited),
    netMinor: Number(r.total) - Number(r.credited),
  }));
  const bytes = await bytesBetween(db, userId, range.from, range.to);
  const spend = new Map<string, bigint>();
  for (const p of periods) spend.set(p.currency, (spend.get(p.currency) ?? 0n) + BigInt(p.netMinor));
  const month = monthAround(now, timeZone);
  const used = await bytesBetween(db, userId, month.start, now);
  const elapsed = BigInt(Math.max(1, now.getTime() - month.start.getTime()));
  const projectedBytes = (used * BigInt(month.end.getTime() - month.start.getTime())) / elapsed;
  return {
    userId,
    timeZone,
    from: range.from.toISOString(),
    to: range.to.toISOString(),
    usedBytes: bytes.toString(),
    periods,
    costPerGiB: [...spend].map(([currency, net]) => ({ currency, netMinor: Number(net), perGiBMinor: bytes === 0n ? null : Number(mulDiv(net, GIB, bytes)) })),
    projection: {
      monthStart: month.start.toISOString(),
      monthEnd: month.end.toISOString(),
      usedBytes: used.toString(),
      projectedBytes: projectedBytes.toString(),
      costs: [...spend].map(([currency, net]) => ({ currency, projectedMinor: bytes === 0n ? null : Number(mulDiv(net, projectedBytes, bytes)) })),
    },
  };
}

export async function fleetCost(db: Kysely<Database>, billing: BillingQueries, range: { from: Date; to: Date }, now = new Date()) {
  const revenue = new Map<string, { planId: string; currency: string; orders: number; grossMinor: number; refundedMinor: number; netMinor: number }>();
  for (const r of await billing.revenue(range.from, range.to)) {
    const key = `${r.planId}\n${r.currency}`;
    const sum = revenue.get(key) ?? { planId: r.planId, currency: r.currency, orders: 0, grossMinor: 0, refundedMinor: 0, netMinor: 0 };
    sum.orders += r.orders;
    sum.grossMinor += r.grossMinor;
    sum.refundedMinor += r.refundedMinor;
    sum.netMinor += r.netMinor;
    revenue.set(key, sum);
  }
  const payers = await sql<{ plan_id: string; currency: string; users: string }>`
    select plan_id, currency, count(distinct user_id)::text as users from orders where paid_at >= ${range.from} and paid_at < ${range.to} group by 1, 2`.execute(db);
  const mrr = await sql<{ plan_id: string; currency: string; subscriptions: string; mrr: string }>`
    select s.plan_id, p.currency, count(*)::text as subscriptions, sum(p.price_minor)::text as mrr
    from analytics_plan_spans s join plans p on p.id = s.plan_id
    where s.ended_at is null and s.started_at <= ${now} and p.price_minor > 0
    group by 1, 2 order by 1, 2`.execute(db);
  const churn = await sql<{ plan_id: string; at_start: string; churned: string }>`
    select s.plan_id,
      count(*) filter (where s.started_at < ${range.from} and (s.ended_at is null or s.ended_at >= ${range.from}))::text as at_start,
      count(*) filter (where s.end_cause = 'expired' and s.ended_at >= ${range.from} and s.ended_at < ${range.to}
        and not exists (select 1 from analytics_plan_spans n where n.user_id = s.user_id and n.started_at >= s.ended_at and n.started_at < ${range.to}))::text as churned
    from analytics_plan_spans s group by 1 order by 1`.execute(db);
  const users = new Map(payers.rows.map((r) => [`${r.plan_id}\n${r.currency}`, Number(r.users)]));
  return {
    from: range.from.toISOString(),
    to: range.to.toISOString(),
    revenue: [...revenue.values()].map((r) => {
      const paying = users.get(`${r.planId}\n${r.currency}`) ?? 0;
      return { ...r, payingUsers: paying, arpuMinor: paying === 0 ? null : Number(mulDiv(BigInt(r.netMinor), 1n, BigInt(paying))) };
    }),
    mrr: mrr.rows.map((r) => ({ planId: r.plan_id, currency: r.currency, subscriptions: Number(r.subscriptions), mrrMinor: Number(r.mrr) })),
    churn: churn.rows.map((r) => ({ planId: r.plan_id, runningAtStart: Number(r.at_start), churned: Number(r.churned), rate: Number(r.at_start) === 0 ? null : Number(r.churned) / Number(r.at_start) })),
  };
}
