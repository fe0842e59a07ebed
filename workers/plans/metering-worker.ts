/**
 * Turns metered usage into subscription commands, as soon as the metering
 * projector (or the plans projector) commits a batch — it listens to their
 * checkpoint notifications — and on a slow poll besides:
 * - `MarkLimited` when a block-overage period's usage reaches its allowance
 *   plus grants; `Reactivate` when a limited period has room again;
 * - `NoteUsage` when usage reaches 80, 95 or 100 % of the allowance;
 * - `Activate {first_traffic}` when a held subscription's user has traffic;
 * - `NoteExpiry` 3 and 1 local days before an expiry (due by time).
 * It is the generic scheduler (workers/scheduler): one leader fires, others
 * stand by; every command is idempotent in the subscription decider (keyed by
 * the period start, the expiry, the hold), so two workers or a restart mid-fire
 * record nothing twice. Runs in the fleet worker, beside the period scheduler.
 */
import { sql } from 'kysely';
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import { currentUsage, type CurrentUsageRow } from '../../producers/plans/metering-queries.js';
import type { Plans } from '../../producers/plans/plans.js';
import { EXPIRY_REMINDER_DAYS, reminderAt, subscriptionDecider, THRESHOLD_PERCENTS, type SubscriptionCommand } from '../../producers/plans/subscription.decider.js';
import { expiryNotice, usageNotice } from '../../projectors/plans/metering-periods.js';
import { METERING_PROJECTOR } from '../../projectors/plans/metering.projection.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import type { Clock } from '../scheduler/clock.js';
import { runScheduler, type Scheduler } from '../scheduler/scheduler.js';

export type MeteringItem =
  | { kind: 'limit'; userId: string; periodStart: Date; usedBytes: bigint; dueAt: Date }
  | { kind: 'reactivate'; userId: string; periodStart: Date; dueAt: Date }
  | { kind: 'usage'; userId: string; periodStart: Date; usedBytes: bigint; percent: number; dueAt: Date }
  | { kind: 'first_traffic'; userId: string; startsAt: Date; trafficAt: Date; dueAt: Date }
  | { kind: 'expiry'; userId: string; expiresAt: Date; daysLeft: number; dueAt: Date };

const SYSTEM = { actor: 'system:metering' };
const DAY_MS = 86_400_000;
/** Local days can be 25 hours: the due query looks that much further ahead. */
const REMINDER_HORIZON_MS = Math.max(...EXPIRY_REMINDER_DAYS) * DAY_MS + 2 * 3_600_000;

export function keyOf(item: MeteringItem): string {
  switch (item.kind) {
    case 'limit':
    case 'reactivate':
      return `${item.kind}:${item.userId}:${item.periodStart.toISOString()}`;
    case 'usage':
      return `usage:${item.userId}:${item.periodStart.toISOString()}:${item.percent}`;
    case 'first_traffic':
      return `hold:${item.userId}:${item.startsAt.toISOString()}`;
    case 'expiry':
      return `expiry:${item.userId}:${item.expiresAt.toISOString()}:${item.daysLeft}`;
  }
}

/** Traffic is due when it happened; a node's clock ahead of ours must not hold it back. */
const notAfter = (at: Date, now: Date) => (at.getTime() > now.getTime() ? now : at);

/** Everything due at `now`, from the read models (metering's and the plans'). */
export async function meteringDue(plans: Plans, now: Date, limit: number): Promise<MeteringItem[]> {
  const db = plans.deps.db;
  const { rows } = await sql<CurrentUsageRow & { noted: string[] | null }>`
    select c.*, (select array_agg(n.notice) from subscription_notices n where n.user_id = c.user_id and n.notice like 'usage:%') as noted
    from ${currentUsage(now)} c
    where c.phase = 'running' and c.allowance is not null and c.period_start is not null and c.last_at is not null
      and (c.used::numeric * 100 >= c.allowance::numeric * ${Math.min(...THRESHOLD_PERCENTS)} or c.limited)
    order by c.last_at limit ${limit}
  `.execute(db);
  const items: MeteringItem[] = [];
  for (const r of rows) {
    const periodStart = r.period_start!;
    const used = BigInt(r.used);
    const spent = used >= BigInt(r.total!);
    const base = { userId: r.user_id, periodStart, dueAt: notAfter(r.last_at!, now) };
    if (!r.limited && spent && r.overage === 'block') items.push({ kind: 'limit', ...base, usedBytes: used });
    if (r.limited && !spent) items.push({ kind: 'reactivate', ...base });
    const allowance = BigInt(r.allowance!);
    const reached = THRESHOLD_PERCENTS.filter((p) => allowance > 0n && used * 100n >= allowance * BigInt(p) && !(r.noted ?? []).includes(usageNotice(periodStart, p)));
    // One decision notes every threshold reached: the item is named by the highest.
    if (reached.length > 0) items.push({ kind: 'usage', ...base, usedBytes: used, percent: Math.max(...reached) });
  }
  const held = await db
    .selectFrom('subscriptions as s')
    .innerJoin('metering_pending as m', 'm.user_id', 's.user_id')
    .where('s.phase', '=', 'on_hold')
    .whereRef('m.at', '>=', 's.starts_at')
    .select(['s.user_id', 's.starts_at'])
    .select((eb) => eb.fn.min('m.at').as('first'))
    .groupBy(['s.user_id', 's.starts_at'])
    .limit(limit)
    .execute();
  for (const h of held) {
    const trafficAt = new Date(h.first);
    items.push({ kind: 'first_traffic', userId: h.user_id, startsAt: h.starts_at, trafficAt, dueAt: notAfter(trafficAt, now) });
  }
  const expiring = await db
    .selectFrom('subscriptions as s')
    .where('s.phase', '=', 'running')
    .where('s.expires_at', '>', now)
    .where('s.expires_at', '<=', new Date(now.getTime() + REMINDER_HORIZON_MS))
    .select(['s.user_id', 's.expires_at', 's.time_zone'])
    .select((eb) => eb.selectFrom('subscription_notices as n').whereRef('n.user_id', '=', 's.user_id').where('n.notice', 'like', 'expiry:%').select(sql<string[]>`array_agg(n.notice)`.as('a')).as('noted'))
    .limit(limit)
    .execute();
  for (const e of expiring) {
    const expiresAt = e.expires_at!;
    const due = EXPIRY_REMINDER_DAYS.map((daysLeft) => ({ daysLeft, at: reminderAt(expiresAt, daysLeft, e.time_zone) })).filter((d) => d.at.getTime() <= now.getTime());
    if (due.length === 0) continue;
    const nearest = due.reduce((a, b) => (a.daysLeft < b.daysLeft ? a : b));
    if ((e.noted ?? []).includes(expiryNotice(expiresAt, nearest.daysLeft))) continue;
    items.push({ kind: 'expiry', userId: e.user_id, expiresAt, daysLeft: nearest.daysLeft, dueAt: nearest.at });
  }
  return items.sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime()).slice(0, limit);
}

function commandOf(item: MeteringItem, at: Date): SubscriptionCommand | undefined {
  switch (item.kind) {
    case 'limit':
      return { type: 'MarkLimited', periodStart: item.periodStart, usedBytes: item.usedBytes, cause: 'allowance_spent', at };
    case 'reactivate':
      return { type: 'Reactivate', periodStart: item.periodStart, cause: 'metering', at };
    case 'usage':
      return { type: 'NoteUsage', periodStart: item.periodStart, usedBytes: item.usedBytes, at };
    case 'expiry':
      return { type: 'NoteExpiry', expiresAt: item.expiresAt, at };
    case 'first_traffic':
      return undefined;
  }
}

export interface MeteringWorkerOptions {
  databaseUrl: string;
  watcher: Pick<CheckpointWatcher, 'onMove'>;
  log: Logger;
  metrics: Metrics;
  clock?: Clock;
  /** The poll behind the notifications (default 1000 ms). */
  pollMs?: number;
  standbyPollMs?: number;
}

export interface MeteringWorker {
  scheduler: Scheduler;
  close(): Promise<void>;
}

export async function startMeteringWorker(plans: Plans, opts: MeteringWorkerOptions): Promise<MeteringWorker> {
  const now = () => opts.clock?.now() ?? new Date();
  const scheduler = runScheduler<MeteringItem>({
    name: 'plans-metering',
    databaseUrl: opts.databaseUrl,
    due: (at, limit) => meteringDue(plans, at, limit),
    keyOf,
    dueAtOf: (item) => item.dueAt,
    fire: async (item) => {
      if (item.kind === 'first_traffic') {
        await plans.subscriptions.firstTraffic(item.userId, item.trafficAt, now());
        return;
      }
      await plans.deps.decide(subscriptionDecider, 'subscription', item.userId, commandOf(item, now())!, SYSTEM);
    },
    log: opts.log,
    metrics: opts.metrics,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
    ...(opts.standbyPollMs ? { standbyPollMs: opts.standbyPollMs } : {}),
  });
  const unsubscribe = await opts.watcher.onMove([METERING_PROJECTOR, 'plans'], () => scheduler.wake());
  return {
    scheduler,
    close: async () => {
      unsubscribe();
      await scheduler.close();
    },
  };
}
