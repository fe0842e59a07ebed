/**
 * The connection history (`connection_history`), from ConnectionsReported:
 * one row per connection, with its node, inbound, times, bytes and the
 * client IP as sealed in the event (opened only for its owner, at read time:
 * producers/usage/connection-history.ts). A connection is reported when it
 * opens and again when it closes; the row keeps the last word of each field
 * that has one (a close time, a port, the larger byte counts), so a report
 * applied twice or out of order leaves the same row.
 */
import { sql } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { ConnectionRecordV1 } from '../../contracts/catalogue.generated.js';
import type { Projection } from '../runtime/projection.js';

interface Row extends ConnectionRecordV1 {
  nodeId: string;
  seq: number;
}

const later = <T>(a: T | null, b: T | null): T | null => b ?? a;
const larger = (a: bigint, b: bigint) => (b > a ? b : a);

/** Folds the batch per connection, as the upsert folds it into the row already there. */
function fold(events: readonly StoredEvent[]): Row[] {
  const rows = new Map<string, Row>();
  for (const e of events) {
    if (e.type !== 'usage.ConnectionsReported') continue;
    for (const c of e.data.connections) {
      const seen = rows.get(c.connectionId);
      rows.set(
        c.connectionId,
        seen
          ? { ...seen, inboundTag: later(seen.inboundTag, c.inboundTag), port: later(seen.port, c.port), clientIpSealed: seen.clientIpSealed ?? c.clientIpSealed, closedAt: later(seen.closedAt, c.closedAt), uplink: larger(seen.uplink, c.uplink), downlink: larger(seen.downlink, c.downlink), seq: e.seq }
          : { ...c, nodeId: e.data.nodeId, seq: e.seq },
      );
    }
  }
  return [...rows.values()];
}

export const connectionsProjection: Projection = {
  name: 'connections',
  context: 'usage',
  tables: ['connection_history'],
  filter: (names) => names.aggregateSubjects('usage', 'connections'),
  async apply(trx, events) {
    const rows = fold(events);
    if (rows.length === 0) return;
    await sql`
      insert into connection_history (connection_id, user_id, node_id, inbound_tag, port, client_ip_sealed, opened_at, closed_at, uplink, downlink, last_seq)
      select * from unnest(
        ${rows.map((r) => r.connectionId)}::text[], ${rows.map((r) => r.userId)}::text[], ${rows.map((r) => r.nodeId)}::text[],
        ${rows.map((r) => r.inboundTag)}::text[], ${rows.map((r) => r.port)}::int[], ${rows.map((r) => r.clientIpSealed)}::bytea[],
        ${rows.map((r) => r.openedAt)}::timestamptz[], ${rows.map((r) => r.closedAt)}::timestamptz[],
        ${rows.map((r) => r.uplink.toString())}::bigint[], ${rows.map((r) => r.downlink.toString())}::bigint[], ${rows.map((r) => r.seq)}::bigint[]
      )
      on conflict (connection_id) do update set
        inbound_tag = coalesce(excluded.inbound_tag, connection_history.inbound_tag),
        port = coalesce(excluded.port, connection_history.port),
        client_ip_sealed = coalesce(connection_history.client_ip_sealed, excluded.client_ip_sealed),
        closed_at = coalesce(excluded.closed_at, connection_history.closed_at),
        uplink = greatest(connection_history.uplink, excluded.uplink),
        downlink = greatest(connection_history.downlink, excluded.downlink),
        last_seq = greatest(connection_history.last_seq, excluded.last_seq)
    `.execute(trx);
  },
};
