/**
 * What metering needs from the plans stream, written by the plans projector
 * in its own transaction (plans.projection.ts calls recordMeteringPlans):
 * - `subscription_periods`: every period each subscription ran, with its
 *   allowance, and where the subscription ended (an expiry, a new
 *   subscription, a hold). A usage tick is attributed by its time against
 *   these rows (metering.projection.ts), so a tick that arrives after the roll
 *   of its period still counts in the period it happened in.
 * - `subscription_notices`: thresholds and expiry reminders already recorded,
 *   the metering worker's "done" (workers/plans/metering-worker.ts).
 */
import { sql, type Transaction } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import { EXPIRY_REMINDER_DAYS } from '../../producers/plans/subscription.decider.js';
import type { Database } from '../../schema/database.js';
import { upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';

interface PeriodRow {
  user_id: string;
  period_start: Date;
  period_end: Date | null;
  /** Unknown (undefined): the subscription's current terms, as the plans projector has just written them. */
  allowance: string | null | undefined;
}

export const usageNotice = (periodStart: Date, percent: number) => `usage:${periodStart.toISOString()}:${percent}`;
export const expiryNotice = (expiresAt: Date, daysLeft: number) => `expiry:${expiresAt.toISOString()}:${daysLeft}`;

const bytes = (b: bigint | null) => (b === null ? null : b.toString());

/** The batch's period starts, subscription ends and notices, in three statements. */
export async function recordMeteringPlans(trx: Transaction<Database>, events: readonly StoredEvent[]): Promise<void> {
  const periods = new Map<string, PeriodRow>();
  const ends: { user_id: string; at: Date }[] = [];
  const notices: { user_id: string; notice: string; noted_at: Date }[] = [];
  const open = (row: PeriodRow) => periods.set(`${row.user_id}\n${row.period_start.getTime()}`, row);
  for (const e of events) {
    switch (e.type) {
      case 'plans.SubscriptionStarted': {
        const d = e.data;
        // The previous subscription, if any, stops where this one's first period (or its hold) starts.
        ends.push({ user_id: d.userId, at: d.periodStart ?? d.startsAt });
        if (d.periodStart) open({ user_id: d.userId, period_start: d.periodStart, period_end: d.periodEnd, allowance: bytes(d.allowanceBytes) });
        break;
      }
      case 'plans.PeriodRolled': {
        const d = e.data;
        open({ user_id: d.userId, period_start: d.periodStart ?? d.previousPeriodEnd, period_end: d.periodEnd, allowance: bytes(d.allowanceBytes) });
        break;
      }
      case 'plans.SubscriptionActivated': {
        const d = e.data;
        open({ user_id: d.userId, period_start: d.periodStart ?? d.clockStart, period_end: d.periodEnd, allowance: undefined });
        break;
      }
      case 'plans.SubscriptionExpired':
        ends.push({ user_id: e.data.userId, at: e.data.expiresAt });
        break;
      case 'plans.UsageThresholdReached':
        notices.push({ user_id: e.data.userId, notice: usageNotice(e.data.periodStart, e.data.percent), noted_at: e.data.reachedAt });
        break;
      case 'plans.ExpiryApproaching': {
        const d = e.data;
        // The reminders it skipped are done too.
        for (const days of EXPIRY_REMINDER_DAYS.filter((n) => n >= d.daysLeft)) notices.push({ user_id: d.userId, notice: expiryNotice(d.expiresAt, days), noted_at: d.notedAt });
        break;
      }
      default:
    }
  }
  const rows = [...periods.values()];
  if (rows.length > 0) {
    // An activation's allowance is the subscription's, which the plans projector has just written in this transaction.
    await sql`
      insert into subscription_periods (user_id, period_start, period_end, allowance_bytes)
      select r.user_id, r.period_start, r.period_end, case when r.known then r.allowance else s.allowance_bytes end
      from unnest(${rows.map((r) => r.user_id)}::text[], ${rows.map((r) => r.period_start)}::timestamptz[], ${rows.map((r) => r.period_end)}::timestamptz[],
                  ${rows.map((r) => r.allowance ?? null)}::bigint[], ${rows.map((r) => r.allowance !== undefined)}::boolean[]) as r(user_id, period_start, period_end, allowance, known)
      left join subscriptions s on s.user_id = r.user_id
      on conflict (user_id, period_start) do update set period_end = excluded.period_end, allowance_bytes = excluded.allowance_bytes, ended_at = null
    `.execute(trx);
  }
  if (ends.length > 0) {
    // Each period ends at the first end after its start; periods that start later (the new subscription's) are not touched.
    await sql`
      update subscription_periods p set ended_at = least(coalesce(p.ended_at, m.at), m.at)
      from (
        select p2.user_id, p2.period_start, min(e.at) as at
        from subscription_periods p2 join unnest(${ends.map((e) => e.user_id)}::text[], ${ends.map((e) => e.at)}::timestamptz[]) as e(user_id, at)
          on e.user_id = p2.user_id and e.at > p2.period_start
        group by p2.user_id, p2.period_start
      ) m
      where p.user_id = m.user_id and p.period_start = m.period_start
    `.execute(trx);
  }
  const columns: UnnestColumn<(typeof notices)[number]>[] = [
    { name: 'user_id', arrayType: 'text[]', value: (n) => n.user_id },
    { name: 'notice', arrayType: 'text[]', value: (n) => n.notice },
    { name: 'noted_at', arrayType: 'timestamptz[]', value: (n) => n.noted_at },
  ];
  await upsertUnnest(trx, 'subscription_notices', columns, notices, ['user_id', 'notice'], 'nothing');
}
