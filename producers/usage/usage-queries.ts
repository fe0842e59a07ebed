/**
 * Usage read from the hourly read models (projectors/usage): buckets of hours
 * or UTC days over a range, and one calendar month (UTC). Sums are done in
 * Postgres and read as text, so 64-bit byte counts never pass through a
 * JavaScript number: bytes are decimal strings from here to the client.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import { DomainError } from '../decider.js';

export type Granularity = 'hour' | 'day';

/** Whose usage: one user (summed over nodes) or one node (summed over users). */
export type UsageScope = { userId: string } | { nodeId: string };

export interface UsageBucket {
  /** ISO time the bucket starts (UTC hour, or UTC midnight). */
  start: string;
  uplink: string;
  downlink: string;
}

export interface MonthlyUsage {
  /** `YYYY-MM`, UTC. */
  month: string;
  uplink: string;
  downlink: string;
  total: string;
}

const HOUR_MS = 3_600_000;
const STEP_MS: Record<Granularity, number> = { hour: HOUR_MS, day: 24 * HOUR_MS };
/** About a quarter: enough for any chart, small enough (about 2 200 hourly buckets) to answer at once. */
export const MAX_RANGE_DAYS = 93;
export const DEFAULT_RANGE_MS = 24 * HOUR_MS;
const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** A query the caller got wrong: 400 invalid_querystring naming `field` (producers/api/errors.ts). */
const invalid = (field: string, message: string) => new DomainError('invalid_querystring', `${field}: ${message}`, { field });

function time(field: string, value: string | undefined, fallback: Date): Date {
  if (value === undefined) return fallback;
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) throw invalid(field, 'must be an ISO 8601 time');
  return at;
}

/**
 * The range of a stats query: `to` defaults to now and `from` to `defaultMs`
 * (24 hours) before `to`; `from` must come before `to`, at most `maxDays`
 * (MAX_RANGE_DAYS) apart.
 */
export function usageRange(from: string | undefined, to: string | undefined, now = new Date(), limits: { defaultMs?: number; maxDays?: number } = {}): { from: Date; to: Date } {
  const { defaultMs = DEFAULT_RANGE_MS, maxDays = MAX_RANGE_DAYS } = limits;
  const end = time('to', to, now);
  const start = time('from', from, new Date(end.getTime() - defaultMs));
  if (start.getTime() >= end.getTime()) throw invalid('from', 'must be before to');
  if (end.getTime() - start.getTime() > maxDays * 24 * HOUR_MS) throw invalid('from', `must be at most ${maxDays} days before to`);
  return { from: start, to: end };
}

/** Bucket boundaries are whole UTC hours or days (epoch multiples, so no time zone can shift them). */
const floorTo = (at: Date, step: number) => new Date(Math.floor(at.getTime() / step) * step);
const ceilTo = (at: Date, step: number) => new Date(Math.ceil(at.getTime() / step) * step);

/**
 * Usage in every bucket that overlaps [from, to), whole buckets, zeros
 * included so a chart needs no filling. A tick counts towards the hour its
 * interval ended in (see the projection).
 */
export async function usageBuckets(db: Kysely<Database>, scope: UsageScope, range: { from: Date; to: Date }, granularity: Granularity): Promise<UsageBucket[]> {
  const step = STEP_MS[granularity];
  const start = floorTo(range.from, step);
  const end = ceilTo(range.to, step);
  // date_bin on an epoch origin is independent of the session's time zone (date_trunc on timestamptz is not).
  const bin = sql`date_bin(${sql.raw(`interval '${step / HOUR_MS} hours'`)}, hour, timestamptz '1970-01-01 00:00:00+00')`;
  const filter = 'userId' in scope ? sql`user_id = ${scope.userId}` : sql`node_id = ${scope.nodeId}`;
  const table = 'userId' in scope ? sql.table('usage_user_hourly') : sql.table('usage_node_hourly');
  const { rows } = await sql<{ start: Date; uplink: string; downlink: string }>`
    select ${bin} as start, sum(uplink)::text as uplink, sum(downlink)::text as downlink
    from ${table}
    where ${filter} and hour >= ${start} and hour < ${end}
    group by 1
  `.execute(db);
  const byStart = new Map(rows.map((r) => [r.start.getTime(), r]));
  const buckets: UsageBucket[] = [];
  for (let at = start.getTime(); at < end.getTime(); at += step) {
    const row = byStart.get(at);
    buckets.push({ start: new Date(at).toISOString(), uplink: row?.uplink ?? '0', downlink: row?.downlink ?? '0' });
  }
  return buckets;
}

/** `YYYY-MM` (UTC) of an instant. */
export const monthOf = (at: Date): string => at.toISOString().slice(0, 7);

/** A user's usage in one UTC calendar month. */
export async function monthlyUsage(db: Kysely<Database>, userId: string, month: string): Promise<MonthlyUsage> {
  const match = MONTH.exec(month);
  if (!match) throw invalid('month', 'must be YYYY-MM');
  const year = Number(match[1]);
  const index = Number(match[2]) - 1;
  const start = new Date(Date.UTC(year, index, 1));
  const end = new Date(Date.UTC(year, index + 1, 1));
  const { rows } = await sql<{ uplink: string; downlink: string; total: string }>`
    select coalesce(sum(uplink), 0)::text as uplink,
           coalesce(sum(downlink), 0)::text as downlink,
           (coalesce(sum(uplink), 0) + coalesce(sum(downlink), 0))::text as total
    from usage_user_hourly
    where user_id = ${userId} and hour >= ${start} and hour < ${end}
  `.execute(db);
  const row = rows[0] ?? { uplink: '0', downlink: '0', total: '0' };
  return { month, uplink: row.uplink, downlink: row.downlink, total: row.total };
}
