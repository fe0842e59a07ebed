/**
 * Usage by hour, per user (summed over nodes) and per node, from UsageTicked.
 * A tick the agent sent twice (its spool retried after the append had in fact
 * landed, past JetStream's duplicate window) is counted once: `usage_ticks`
 * remembers every tick id, and only ticks new to it are added. A tick counts
 * towards the hour its interval ended in; intervals are seconds long.
 * Days and months are sums of hours, at query time (producers/usage/usage-queries.ts).
 */
import { sql, type Transaction } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { UsageTickedV1 } from '../../contracts/catalogue.generated.js';
import type { Database } from '../../schema/database.js';
import type { Projection } from '../runtime/projection.js';

const HOUR_MS = 3_600_000;

interface Sum {
  key: string;
  hour: Date;
  uplink: bigint;
  downlink: bigint;
}

class HourlySums {
  private readonly sums = new Map<string, Sum>();

  add(key: string, hour: Date, uplink: bigint, downlink: bigint): void {
    const id = `${key}\n${hour.getTime()}`;
    const sum = this.sums.get(id);
    if (sum) {
      sum.uplink += uplink;
      sum.downlink += downlink;
    } else this.sums.set(id, { key, hour, uplink, downlink });
  }

  /** One additive upsert for the whole batch. */
  async write(trx: Transaction<Database>, table: 'usage_user_hourly' | 'usage_node_hourly', keyColumn: 'user_id' | 'node_id'): Promise<void> {
    if (this.sums.size === 0) return;
    const rows = [...this.sums.values()];
    const key = sql.id(keyColumn);
    await sql`
      insert into ${sql.table(table)} (${key}, hour, uplink, downlink)
      select * from unnest(${rows.map((r) => r.key)}::text[], ${rows.map((r) => r.hour)}::timestamptz[], ${rows.map((r) => r.uplink.toString())}::bigint[], ${rows.map((r) => r.downlink.toString())}::bigint[])
      on conflict (${key}, hour) do update set uplink = ${sql.table(table)}.uplink + excluded.uplink, downlink = ${sql.table(table)}.downlink + excluded.downlink
    `.execute(trx);
  }
}

/**
 * The ticks of the batch that the ledger had not seen, recording them as seen:
 * `usage_ticks` (this projection's), or `metering_ticks` / `analytics_ticks`
 * (metering's and analytics', which run in their own transactions and so need
 * their own memory of what they counted).
 */
export async function newTicks(trx: Transaction<Database>, ticks: readonly UsageTickedV1[], ledger: 'usage_ticks' | 'metering_ticks' | 'analytics_ticks' = 'usage_ticks'): Promise<UsageTickedV1[]> {
  const unique = [...new Map(ticks.map((t) => [t.tickId, t])).values()];
  if (unique.length === 0) return [];
  const ids = unique.map((t) => t.tickId);
  const inserted =
    ledger === 'usage_ticks'
      ? await sql<{ tick_id: string }>`
    insert into usage_ticks (tick_id, node_id, interval_end)
    select * from unnest(${ids}::text[], ${unique.map((t) => t.nodeId)}::text[], ${unique.map((t) => t.intervalEnd)}::timestamptz[])
    on conflict (tick_id) do nothing returning tick_id
  `.execute(trx)
      : await sql<{ tick_id: string }>`insert into ${sql.table(ledger)} (tick_id) select * from unnest(${ids}::text[]) on conflict (tick_id) do nothing returning tick_id`.execute(trx);
  const fresh = new Set(inserted.rows.map((r) => r.tick_id));
  return unique.filter((t) => fresh.has(t.tickId));
}

export const usageProjection: Projection = {
  name: 'usage',
  context: 'usage',
  tables: ['usage_ticks', 'usage_user_hourly', 'usage_node_hourly'],
  filter: (names) => names.aggregateSubjects('usage', 'node'),
  async apply(trx, events: readonly StoredEvent[]) {
    const ticks = events.flatMap((e) => (e.type === 'usage.UsageTicked' ? [e.data] : []));
    const byUser = new HourlySums();
    const byNode = new HourlySums();
    for (const tick of await newTicks(trx, ticks)) {
      const hour = new Date(Math.floor(tick.intervalEnd.getTime() / HOUR_MS) * HOUR_MS);
      let up = 0n;
      let down = 0n;
      for (const u of tick.users) {
        byUser.add(u.userId, hour, u.uplink, u.downlink);
        up += u.uplink;
        down += u.downlink;
      }
      byNode.add(tick.nodeId, hour, up, down);
    }
    await byUser.write(trx, 'usage_user_hourly', 'user_id');
    await byNode.write(trx, 'usage_node_hourly', 'node_id');
  },
};
