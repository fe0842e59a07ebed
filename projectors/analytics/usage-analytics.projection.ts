/**
 * Analytics' usage read models, from UsageTicked (docs/analytics.md): bytes
 * per user × node × hour and per user × node × UTC day, per node × hour (the
 * fleet's trends without reading every user's rows), and when each user's
 * traffic was first and last seen (active users). Country and protocol are a
 * node's, and plan a user's plan span at the hour, joined at query time
 * (producers/analytics/trends.ts), so the rows stay narrow and additive.
 *
 * It keeps its own tick ledger (`analytics_ticks`): it runs in its own
 * transaction, so the usage projection's memory of counted ticks is not
 * this one's. A tick counts towards the hour and the UTC day its interval
 * ended in, as in the usage projection.
 */
import { sql, type Transaction } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { Database } from '../../schema/database.js';
import type { Projection } from '../runtime/projection.js';
import { newTicks } from '../usage/usage.projection.js';

const HOUR_MS = 3_600_000;

interface Sum {
  keys: string[];
  uplink: bigint;
  downlink: bigint;
}

/** Additive sums per key tuple, written as one upsert that adds to what the rows hold. */
class Sums {
  private readonly sums = new Map<string, Sum>();

  constructor(
    private readonly table: 'analytics_usage_hourly' | 'analytics_usage_daily' | 'analytics_node_hourly',
    /** The key columns with their Postgres array types, in `keys` order. */
    private readonly columns: readonly (readonly [string, string])[],
  ) {}

  add(keys: string[], uplink: bigint, downlink: bigint): void {
    const id = keys.join('\n');
    const sum = this.sums.get(id);
    if (sum) {
      sum.uplink += uplink;
      sum.downlink += downlink;
    } else this.sums.set(id, { keys, uplink, downlink });
  }

  async write(trx: Transaction<Database>): Promise<void> {
    if (this.sums.size === 0) return;
    const rows = [...this.sums.values()];
    const table = sql.table(this.table);
    const keys = sql.join(this.columns.map(([name]) => sql.id(name)));
    const arrays = sql.join(this.columns.map(([, type], i) => sql`${rows.map((r) => r.keys[i])}::${sql.raw(type)}`));
    await sql`
      insert into ${table} (${keys}, uplink, downlink)
      select * from unnest(${arrays}, ${rows.map((r) => r.uplink.toString())}::bigint[], ${rows.map((r) => r.downlink.toString())}::bigint[])
      on conflict (${keys}) do update set uplink = ${table}.uplink + excluded.uplink, downlink = ${table}.downlink + excluded.downlink
    `.execute(trx);
  }
}

export const usageAnalyticsProjection: Projection = {
  name: 'analytics-usage',
  context: 'usage',
  tables: ['analytics_ticks', 'analytics_usage_hourly', 'analytics_usage_daily', 'analytics_node_hourly', 'analytics_user_activity'],
  filter: (names) => names.aggregateSubjects('usage', 'node'),
  async apply(trx, events: readonly StoredEvent[]) {
    const ticks = events.flatMap((e) => (e.type === 'usage.UsageTicked' ? [e.data] : []));
    const hourly = new Sums('analytics_usage_hourly', [['user_id', 'text[]'], ['hour', 'timestamptz[]'], ['node_id', 'text[]']]);
    const daily = new Sums('analytics_usage_daily', [['user_id', 'text[]'], ['day', 'date[]'], ['node_id', 'text[]']]);
    const nodes = new Sums('analytics_node_hourly', [['node_id', 'text[]'], ['hour', 'timestamptz[]']]);
    const seen = new Map<string, { first: number; last: number }>();
    for (const tick of await newTicks(trx, ticks, 'analytics_ticks')) {
      const end = tick.intervalEnd.getTime();
      const hour = new Date(Math.floor(end / HOUR_MS) * HOUR_MS).toISOString();
      const day = hour.slice(0, 10);
      let up = 0n;
      let down = 0n;
      for (const u of tick.users) {
        hourly.add([u.userId, hour, tick.nodeId], u.uplink, u.downlink);
        daily.add([u.userId, day, tick.nodeId], u.uplink, u.downlink);
        up += u.uplink;
        down += u.downlink;
        // A user listed with no bytes was on the node but idle: not active.
        if (u.uplink + u.downlink === 0n) continue;
        const s = seen.get(u.userId);
        if (s) {
          s.first = Math.min(s.first, end);
          s.last = Math.max(s.last, end);
        } else seen.set(u.userId, { first: end, last: end });
      }
      nodes.add([tick.nodeId, hour], up, down);
    }
    await hourly.write(trx);
    await daily.write(trx);
    await nodes.write(trx);
    if (seen.size === 0) return;
    const users = [...seen];
    await sql`
      insert into analytics_user_activity (user_id, first_at, last_at)
      select * from unnest(${users.map(([id]) => id)}::text[], ${users.map(([, s]) => new Date(s.first))}::timestamptz[], ${users.map(([, s]) => new Date(s.last))}::timestamptz[])
      on conflict (user_id) do update set first_at = least(analytics_user_activity.first_at, excluded.first_at), last_at = greatest(analytics_user_activity.last_at, excluded.last_at)
    `.execute(trx);
  },
};
