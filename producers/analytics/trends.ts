/**
 * Usage trends (GET /v1/analytics/usage-trends) from the analytics read
 * models (projectors/analytics): a user's or the fleet's bytes per hour, local
 * day or local week, optionally split by node, country, protocol or plan.
 *
 * Which table answers: buckets that are whole UTC days read the daily rows
 * (a user's quarter is ~90 rows per node, not ~2,200); any other bucket reads
 * the hourly rows. The fleet by node, country or protocol reads the per-node
 * hours (nodes × hours rows, whatever the number of users); the fleet by
 * plan has to read users' rows, joined with their plan spans.
 *
 * Dimensions: country is the node's (fleet_nodes), protocol the inbound kind
 * of the profiles the node carries (`mixed` when it carries several kinds:
 * a core counts a user's bytes per user, not per inbound, so ticks cannot
 * split them), plan the user's subscription at the row's hour (at the day's
 * UTC start for daily rows). Node country and protocol are read as the fleet
 * is now, not as it was at the hour.
 */
import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../../schema/database.js';
import { alignedToUtcDays, bucketBounds, type TrendGranularity } from './buckets.js';

export type TrendGroup = 'node' | 'country' | 'protocol' | 'plan';
export type TrendScope = { userId: string } | { fleet: true };

export interface Traffic {
  uplink: string;
  downlink: string;
  total: string;
}

export interface TrendBucket extends Traffic {
  start: string;
  end: string;
  /** Only with groupBy: the groups with traffic in the bucket, largest first. */
  groups?: (Traffic & { key: string })[];
}

export const traffic = (uplink: bigint, downlink: bigint): Traffic => ({ uplink: uplink.toString(), downlink: downlink.toString(), total: (uplink + downlink).toString() });

/** Each node's protocol: its profiles' one inbound kind, `mixed`, or `unknown` without profiles. */
const NODE_PROTOCOLS = sql`
  select n.id, case count(distinct p.kind) when 0 then 'unknown' when 1 then min(p.kind) else 'mixed' end as protocol
  from fleet_nodes n left join fleet_profiles p on not p.removed and p.labels <@ n.labels
  group by n.id`;

interface Source {
  table: 'analytics_usage_hourly' | 'analytics_usage_daily' | 'analytics_node_hourly';
  /** The row's instant. */
  time: RawBuilder<unknown>;
  range: RawBuilder<unknown>;
}

function sourceOf(scope: TrendScope, groupBy: TrendGroup | undefined, bounds: readonly Date[], granularity: TrendGranularity): Source {
  const first = bounds[0] as Date;
  const last = bounds[bounds.length - 1] as Date;
  const hours = sql`t.hour >= ${first} and t.hour < ${last}`;
  if ('fleet' in scope && groupBy !== 'plan') return { table: 'analytics_node_hourly', time: sql`t.hour`, range: hours };
  if (granularity !== 'hour' && alignedToUtcDays(bounds)) {
    const day = (d: Date) => d.toISOString().slice(0, 10);
    return { table: 'analytics_usage_daily', time: sql`(t.day::timestamp at time zone 'UTC')`, range: sql`t.day >= ${day(first)}::date and t.day < ${day(last)}::date` };
  }
  return { table: 'analytics_usage_hourly', time: sql`t.hour`, range: hours };
}

function dimension(groupBy: TrendGroup | undefined, time: RawBuilder<unknown>): { key: RawBuilder<unknown>; join: RawBuilder<unknown> } {
  switch (groupBy) {
    case undefined:
      return { key: sql`''`, join: sql`` };
    case 'node':
      return { key: sql`t.node_id`, join: sql`` };
    case 'country':
      return { key: sql`coalesce(n.country, 'unknown')`, join: sql`left join fleet_nodes n on n.id = t.node_id` };
    case 'protocol':
      return { key: sql`coalesce(np.protocol, 'unknown')`, join: sql`left join (${NODE_PROTOCOLS}) np on np.id = t.node_id` };
    case 'plan':
      return {
        key: sql`coalesce(s.plan_id, 'none')`,
        join: sql`left join analytics_plan_spans s on s.user_id = t.user_id and s.started_at <= ${time} and (s.ended_at is null or s.ended_at > ${time})`,
      };
  }
}

export async function usageTrends(db: Kysely<Database>, scope: TrendScope, range: { from: Date; to: Date }, granularity: TrendGranularity, timeZone: string, groupBy?: TrendGroup): Promise<TrendBucket[]> {
  const bounds = bucketBounds(range.from, range.to, granularity, timeZone);
  const source = sourceOf(scope, groupBy, bounds, granularity);
  const { key, join } = dimension(groupBy, source.time);
  const owner = 'userId' in scope ? sql`t.user_id = ${scope.userId} and` : sql``;
  const { rows } = await sql<{ b: number; key: string; uplink: string; downlink: string }>`
    select width_bucket(${source.time}, ${bounds}::timestamptz[]) as b, ${key} as key, sum(t.uplink)::text as uplink, sum(t.downlink)::text as downlink
    from ${sql.table(source.table)} t ${join}
    where ${owner} ${source.range}
    group by 1, 2
  `.execute(db);
  const buckets = bounds.slice(0, -1).map((start, i) => ({ start: start.toISOString(), end: (bounds[i + 1] as Date).toISOString(), up: 0n, down: 0n, groups: [] as (Traffic & { key: string })[] }));
  for (const row of rows) {
    const bucket = buckets[row.b - 1];
    if (!bucket) continue;
    const up = BigInt(row.uplink);
    const down = BigInt(row.downlink);
    bucket.up += up;
    bucket.down += down;
    bucket.groups.push({ key: row.key, ...traffic(up, down) });
  }
  return buckets.map((b) => ({
    start: b.start,
    end: b.end,
    ...traffic(b.up, b.down),
    ...(groupBy ? { groups: b.groups.sort((x, y) => (BigInt(y.total) > BigInt(x.total) ? 1 : BigInt(y.total) < BigInt(x.total) ? -1 : x.key.localeCompare(y.key))) } : {}),
  }));
}

/** The caller's zone: the one the plans context keeps on the user (users.time_zone), UTC when unknown. */
export async function timeZoneOf(db: Kysely<Database>, userId: string): Promise<string> {
  return (await db.selectFrom('users').select('time_zone').where('id', '=', userId).executeTakeFirst())?.time_zone ?? 'UTC';
}
