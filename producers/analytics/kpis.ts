/**
 * Operators' KPIs (GET /v1/analytics/kpis): users with traffic in the last
 * 15 minutes (now), 24 hours and 30 days; new subscriptions (spans started in
 * the range that do not continue one ending at that instant: a plan change or
 * a next plan is not new) and churned ones (as in cost.ts); the nodes and
 * countries that carried the most bytes in the range; and the rollouts that
 * finished in the range, with the share that completed.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import { traffic } from './trends.js';

const MINUTE_MS = 60_000;
const TOP = 10;
const FINISHED = ['completed', 'halted', 'rolled_back', 'aborted'];

export async function kpis(db: Kysely<Database>, range: { from: Date; to: Date }, now = new Date()) {
  const since = (ms: number) => new Date(now.getTime() - ms);
  const active = await sql<{ now: string; day: string; month: string }>`
    select count(*) filter (where last_at >= ${since(15 * MINUTE_MS)})::text as now,
           count(*) filter (where last_at >= ${since(24 * 60 * MINUTE_MS)})::text as day,
           count(*)::text as month
    from analytics_user_activity where last_at >= ${since(30 * 24 * 60 * MINUTE_MS)}`.execute(db);
  const subs = await sql<{ started: string; churned: string }>`
    select
      (select count(*) from analytics_plan_spans s where s.started_at >= ${range.from} and s.started_at < ${range.to}
         and not exists (select 1 from analytics_plan_spans p where p.user_id = s.user_id and p.ended_at = s.started_at))::text as started,
      (select count(*) from analytics_plan_spans s where s.end_cause = 'expired' and s.ended_at >= ${range.from} and s.ended_at < ${range.to}
         and not exists (select 1 from analytics_plan_spans n where n.user_id = s.user_id and n.started_at >= s.ended_at and n.started_at < ${range.to}))::text as churned`.execute(db);
  const top = (key: ReturnType<typeof sql>, join: ReturnType<typeof sql>) => sql<{ key: string; uplink: string; downlink: string }>`
    select ${key} as key, sum(t.uplink)::text as uplink, sum(t.downlink)::text as downlink
    from analytics_node_hourly t ${join} where t.hour >= ${range.from} and t.hour < ${range.to}
    group by 1 order by sum(t.uplink + t.downlink) desc, 1 limit ${TOP}`.execute(db);
  const nodes = await top(sql`t.node_id`, sql``);
  const countries = await top(sql`coalesce(n.country, 'unknown')`, sql`left join fleet_nodes n on n.id = t.node_id`);
  const rollouts = await sql<{ finished: string; completed: string }>`
    select count(*)::text as finished, count(*) filter (where status = 'completed')::text as completed
    from fleet_rollouts where status = any(${FINISHED}::text[]) and updated_at >= ${range.from} and updated_at < ${range.to}`.execute(db);
  const a = active.rows[0];
  const r = rollouts.rows[0];
  const finished = Number(r?.finished ?? 0);
  const byTraffic = (rows: { key: string; uplink: string; downlink: string }[]) => rows.map((row) => ({ key: row.key, ...traffic(BigInt(row.uplink), BigInt(row.downlink)) }));
  return {
    from: range.from.toISOString(),
    to: range.to.toISOString(),
    activeUsers: { now: Number(a?.now ?? 0), day: Number(a?.day ?? 0), month: Number(a?.month ?? 0) },
    subscriptions: { started: Number(subs.rows[0]?.started ?? 0), churned: Number(subs.rows[0]?.churned ?? 0) },
    topNodes: byTraffic(nodes.rows),
    topCountries: byTraffic(countries.rows),
    rollouts: { finished, completed: Number(r?.completed ?? 0), successRate: finished === 0 ? null : Number(r?.completed ?? 0) / finished },
  };
}
