/**
 * Metering: usage ticks folded into each subscription's usage per period
 * (`subscription_usage`, keyed by user and period start), exactly once per
 * tick id (its own ledger, `metering_ticks`, in the same transaction).
 *
 * A tick counts in the period its interval END falls in, found in the period
 * history the plans projector keeps (`subscription_periods`) — not in "the
 * current period": the two projectors read different streams, so a tick from
 * before a roll may be applied after the roll (it still goes to the old
 * period), and a tick from after a boundary may be applied before the roll is
 * (it goes to the period that starts at that boundary, which is where the next
 * period of the same subscription always starts). A tick no period covers yet
 * (a hold before its first traffic is acted on; a subscription not projected
 * yet; after an expiry) waits in `metering_pending` and is attributed when one
 * of the user's later ticks is applied and a period covers it.
 *
 * Usage past a period's allowance is drawn from grants, soonest expiry first
 * (then the oldest grant), into `subscription_grant_usage`. Bytes stay bigint
 * from the event to the row; nothing goes through a JS number.
 */
import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { UsageTickedV1 } from '../../contracts/catalogue.generated.js';
import type { Database } from '../../schema/database.js';
import type { Projection } from '../runtime/projection.js';
import { newTicks } from '../usage/usage.projection.js';

export const METERING_PROJECTOR = 'metering';

interface UserRecord {
  userId: string;
  tickId: string;
  at: Date;
  uplink: bigint;
  downlink: bigint;
}

/** One record per user and interval end: several nodes' ticks for the same instant add up. */
function records(ticks: readonly UsageTickedV1[]): UserRecord[] {
  // Keyed by interval end, then user: no key string to build per user.
  const byEnd = new Map<number, Map<string, UserRecord>>();
  const out: UserRecord[] = [];
  for (const tick of ticks) {
    const end = tick.intervalEnd.getTime();
    let byUser = byEnd.get(end);
    if (!byUser) byEnd.set(end, (byUser = new Map<string, UserRecord>()));
    for (const u of tick.users) {
      const r = byUser.get(u.userId);
      if (r) {
        r.uplink += u.uplink;
        r.downlink += u.downlink;
      } else {
        const added = { userId: u.userId, tickId: tick.tickId, at: tick.intervalEnd, uplink: u.uplink, downlink: u.downlink };
        byUser.set(u.userId, added);
        out.push(added);
      }
    }
  }
  return out;
}

/**
 * The period a record at `at` belongs to: the user's latest period starting at
 * or before it; the one after it when `at` is past its boundary and the
 * subscription did not end there; none when the subscription had ended.
 */
const PERIOD_OF = sql`lateral (
    select p.period_start as start, p.period_end, p.ended_at, p.allowance_bytes
    from subscription_periods p where p.user_id = src.user_id and p.period_start <= src.at
    order by p.period_start desc limit 1
  ) p`;
const ATTRIBUTED = sql`case
  when src.at < coalesce(least(p.period_end, p.ended_at), 'infinity') then p.start
  when p.ended_at is null then p.period_end end`;

export interface OverAllowance {
  user_id: string;
  period_start: Date;
  need: string;
  at: Date;
}

/**
 * One shortfall per period: each attribute() statement answers a period's
 * whole shortfall so far (grant_bytes only moves in drawGrants, after every
 * round), so a batch spanning several interval ends of one user answers it
 * once per round, each time larger. Summing them would draw the grants twice;
 * the largest is the period's.
 */
export function shortfallPerPeriod(over: readonly OverAllowance[]): OverAllowance[] {
  const byPeriod = new Map<string, OverAllowance>();
  for (const o of over) {
    const key = `${o.user_id} ${new Date(o.period_start).getTime()}`;
    const seen = byPeriod.get(key);
    if (!seen || BigInt(o.need) > BigInt(seen.need)) byPeriod.set(key, { ...o, at: seen && seen.at > o.at ? seen.at : o.at });
  }
  return [...byPeriod.values()];
}

/**
 * Adds attributed records to usage and parks the others; answers the periods
 * now past their allowance plus what grants already cover. `source` has at
 * most one record per user (an upsert may not touch a row twice), so no
 * grouping is needed: see rounds().
 */
async function attribute(trx: Transaction<Database>, source: RawBuilder<unknown>, before?: RawBuilder<unknown>): Promise<OverAllowance[]> {
  const { rows } = await sql<OverAllowance>`
    with ${before ? sql`${before},` : sql``} src as (${source}),
    a as (
      select src.*, ${ATTRIBUTED} as period_start, p.allowance_bytes
      from src left join ${PERIOD_OF} on true
    ),
    parked as (
      insert into metering_pending (user_id, tick_id, at, uplink_bytes, downlink_bytes)
      select user_id, tick_id, at, uplink, downlink from a where period_start is null
      on conflict do nothing
    ),
    added as (
      insert into subscription_usage as u (user_id, period_start, allowance_bytes, uplink_bytes, downlink_bytes, last_at)
      select user_id, period_start, allowance_bytes, uplink, downlink, at from a where period_start is not null
      on conflict (user_id, period_start) do update set
        allowance_bytes = excluded.allowance_bytes,
        uplink_bytes = u.uplink_bytes + excluded.uplink_bytes, downlink_bytes = u.downlink_bytes + excluded.downlink_bytes,
        last_at = greatest(u.last_at, excluded.last_at)
      returning u.user_id, u.period_start, u.allowance_bytes, u.uplink_bytes + u.downlink_bytes - u.grant_bytes as uncovered, u.last_at
    )
    select user_id, period_start, (uncovered - allowance_bytes)::text as need, last_at as at
    from added where allowance_bytes is not null and uncovered > allowance_bytes
  `.execute(trx);
  return rows;
}

/**
 * The records in rounds with each user at most once per round: one round for
 * a batch of one interval (the common case), more when a batch spans several.
 */
function rounds(rs: UserRecord[]): UserRecord[][] {
  const end = rs[0]?.at.getTime();
  if (rs.every((r) => r.at.getTime() === end)) return [rs]; // one interval end: each user is in it once already
  const out: UserRecord[][] = [];
  const seen = new Map<string, number>();
  for (const r of rs) {
    const n = seen.get(r.userId) ?? 0;
    seen.set(r.userId, n + 1);
    (out[n] ??= []).push(r);
  }
  return out;
}

/**
 * A round's records as rows, in user order (the order of both the period
 * lookup's and the usage upsert's primary key: neighbouring rows then hit the
 * same index pages). A round's records (100,000 in the bench) come from a few ticks, so each
 * tick's id and interval end are sent once with an index per record, not once
 * per record: those copies were most of the statement's text.
 */
function unnestRecords(rs: readonly UserRecord[]): RawBuilder<unknown> {
  const tickIndex = new Map<string, number>();
  const tickIds: string[] = [];
  const ats: Date[] = [];
  const tickOf = rs.map((r) => {
    let i = tickIndex.get(r.tickId);
    if (i === undefined) {
      i = tickIds.push(r.tickId); // 1-based, as `with ordinality` counts
      ats.push(r.at);
      tickIndex.set(r.tickId, i);
    }
    return i;
  });
  return sql`select r.user_id, t.tick_id, t.at, r.uplink, r.downlink
    from unnest(${rs.map((r) => r.userId)}::text[], ${tickOf}::int[], ${rs.map((r) => r.uplink.toString())}::bigint[], ${rs.map((r) => r.downlink.toString())}::bigint[]) as r(user_id, tick, uplink, downlink)
    join unnest(${tickIds}::text[], ${ats}::timestamptz[]) with ordinality as t(tick_id, at, tick) using (tick)
    order by r.user_id`;
}

/**
 * The batch's users' parked records that a period now covers, taken out of
 * `metering_pending` and summed per user (attributed by the earliest: parked
 * records of one user are a hold's first minutes, within its first period).
 */
async function unpark(trx: Transaction<Database>, userIds: readonly string[]): Promise<OverAllowance[]> {
  const moved = sql`moved as (
    delete from metering_pending m using (
      select src.user_id, src.tick_id from metering_pending src cross join ${PERIOD_OF}
      where src.user_id = any(${userIds}::text[]) and ${ATTRIBUTED} is not null
    ) k
    where m.user_id = k.user_id and m.tick_id = k.tick_id
    returning m.*)`;
  const summed = sql`select user_id, min(tick_id) as tick_id, min(at) as at, sum(uplink_bytes)::bigint as uplink, sum(downlink_bytes)::bigint as downlink from moved group by user_id`;
  return attribute(trx, summed, moved);
}

/**
 * Draws each period's usage past its allowance from the user's grants usable
 * at the record's time: soonest expiry first, then the oldest, each up to
 * what is left of it. What no grant covers stays uncovered (the limit).
 */
async function drawGrants(trx: Transaction<Database>, over: readonly OverAllowance[]): Promise<void> {
  if (over.length === 0) return;
  await sql`
    with need as (
      select * from unnest(${over.map((o) => o.user_id)}::text[], ${over.map((o) => o.period_start)}::timestamptz[], ${over.map((o) => o.need)}::numeric[], ${over.map((o) => o.at)}::timestamptz[])
        as n(user_id, period_start, need, at)
    ),
    per_user as (select user_id, sum(need) as need, max(at) as at from need group by user_id),
    avail as (
      select g.user_id, g.grant_id, g.granted_at, g.bytes - coalesce(x.used_bytes, 0) as left_bytes, n.need,
        sum(g.bytes - coalesce(x.used_bytes, 0)) over (partition by g.user_id order by g.expires_at nulls last, g.granted_at, g.grant_id) as upto
      from per_user n
      join subscription_grants g on g.user_id = n.user_id and (g.expires_at is null or g.expires_at > n.at)
      left join subscription_grant_usage x on x.user_id = g.user_id and x.grant_id = g.grant_id and x.granted_at = g.granted_at
      where g.bytes > coalesce(x.used_bytes, 0)
    ),
    take as (select user_id, grant_id, granted_at, least(left_bytes, greatest(0, need - (upto - left_bytes))) as bytes from avail),
    drawn as (
      insert into subscription_grant_usage as x (user_id, grant_id, granted_at, used_bytes)
      select user_id, grant_id, granted_at, bytes from take where bytes > 0
      on conflict (user_id, grant_id, granted_at) do update set used_bytes = x.used_bytes + excluded.used_bytes
    ),
    total as (select user_id, sum(bytes) as bytes from take group by user_id),
    split as (
      select n.user_id, n.period_start, least(n.need, greatest(0, t.bytes - (sum(n.need) over (partition by n.user_id order by n.period_start) - n.need))) as bytes
      from need n join total t using (user_id)
    )
    update subscription_usage u set grant_bytes = u.grant_bytes + split.bytes
    from split where u.user_id = split.user_id and u.period_start = split.period_start and split.bytes > 0
  `.execute(trx);
}

export const meteringProjection: Projection = {
  name: METERING_PROJECTOR,
  context: 'usage',
  tables: ['metering_ticks', 'subscription_usage', 'metering_pending', 'subscription_grant_usage'],
  filter: (names) => names.aggregateSubjects('usage', 'node'),
  async apply(trx, events) {
    const ticks = events.flatMap((e) => (e.type === 'usage.UsageTicked' ? [e.data] : []));
    const fresh = records(await newTicks(trx, ticks, 'metering_ticks'));
    if (fresh.length === 0) return;
    // Parked records are rare (holds before first traffic): look only when there are any.
    const parked = await sql`select 1 from metering_pending limit 1`.execute(trx);
    const a = parked.rows.length > 0 ? await unpark(trx, [...new Set(fresh.map((r) => r.userId))]) : [];
    const b: OverAllowance[] = [];
    for (const round of rounds(fresh)) b.push(...(await attribute(trx, unnestRecords(round))));
    await drawGrants(trx, shortfallPerPeriod([...a, ...b]));
  },
};
