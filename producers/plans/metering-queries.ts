/**
 * Each subscription's current period as metering has it: the usage of the
 * period that `subscriptions` names (read from `subscription_usage`, keyed by
 * that period's start, so a tick projected before or after the roll of its
 * period is where it belongs), what grants covered of it, and what is left
 * of unexpired grants at `now`. What the API shows and what the metering
 * worker decides on.
 */
import { sql, type RawBuilder } from 'kysely';

export interface CurrentUsageRow {
  user_id: string;
  status: string;
  phase: string;
  limited: boolean;
  overage: string;
  starts_at: Date;
  period_start: Date | null;
  expires_at: Date | null;
  time_zone: string;
  /** Bytes as text; null allowance = unlimited. */
  allowance: string | null;
  uplink: string;
  downlink: string;
  used: string;
  /** The period's allowance plus what grants covered of it plus what is left of unexpired grants: used >= room_total means spent. */
  total: string | null;
  last_at: Date | null;
}

/** A subquery (alias it) with one CurrentUsageRow per subscription. */
export function currentUsage(now: Date): RawBuilder<CurrentUsageRow> {
  return sql<CurrentUsageRow>`(
    select s.user_id, s.status, s.phase, s.limited, s.overage, s.starts_at, s.period_start, s.expires_at, s.time_zone,
      s.allowance_bytes::text as allowance,
      coalesce(u.uplink_bytes, 0)::text as uplink, coalesce(u.downlink_bytes, 0)::text as downlink,
      (coalesce(u.uplink_bytes, 0) + coalesce(u.downlink_bytes, 0))::text as used,
      (s.allowance_bytes + coalesce(u.grant_bytes, 0) + coalesce((
        select sum(g.bytes - coalesce(x.used_bytes, 0)) from subscription_grants g
        left join subscription_grant_usage x on x.user_id = g.user_id and x.grant_id = g.grant_id and x.granted_at = g.granted_at
        where g.user_id = s.user_id and (g.expires_at is null or g.expires_at > ${now})
      ), 0))::text as total,
      u.last_at
    from subscriptions s
    left join subscription_usage u on u.user_id = s.user_id and u.period_start = s.period_start
  )`;
}
