/**
 * A user's connection history, newest first, in pages. The client IP is
 * sealed in the read model; it is opened here, in the answer only, and only
 * when the caller may read it (the owner): with the user forgotten their key
 * is gone, and the IP with it.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import { DomainError } from '../decider.js';
import { openText, type PersonKeys } from '../identity/crypto/person-keys.js';

export interface ConnectionView {
  connectionId: string;
  nodeId: string;
  inboundTag: string | null;
  port: number | null;
  /** Null: not yours to read, or the user was forgotten. */
  clientIp: string | null;
  openedAt: string;
  closedAt: string | null;
  uplink: string;
  downlink: string;
}

export interface HistoryPage {
  connections: ConnectionView[];
  /** Pass back as `cursor` for the next (older) page; null at the end. */
  nextCursor: string | null;
}

export const DEFAULT_HISTORY_LIMIT = 100;
export const MAX_HISTORY_LIMIT = 500;

interface Position {
  openedAt: Date;
  connectionId: string;
}

/** Opaque to clients: base64url of the last row's opened time and id. */
const encodeCursor = (p: Position) => Buffer.from(`${p.openedAt.toISOString()}|${p.connectionId}`).toString('base64url');

function decodeCursor(cursor: string): Position {
  const [at, connectionId] = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  const openedAt = new Date(at ?? '');
  if (!connectionId || Number.isNaN(openedAt.getTime())) throw new DomainError('invalid_cursor', 'cursor: not a cursor this API gave; start again without one', { field: 'cursor' });
  return { openedAt, connectionId };
}

export function openIp(key: Buffer | undefined, userId: string, sealed: Buffer | null): string | null {
  try {
    return openText(key, userId, sealed);
  } catch {
    // A value that does not open (altered bytes) reads as no IP rather than failing the whole page.
    return null;
  }
}

/** Connections of `userId` opened in [from, to), newest first; IPs opened only when `openIps`. */
export async function connectionHistory(db: Kysely<Database>, keys: PersonKeys, userId: string, q: { from: Date; to: Date; limit: number; cursor?: string | undefined; openIps: boolean }): Promise<HistoryPage> {
  const after = q.cursor === undefined ? null : decodeCursor(q.cursor);
  let query = db
    .selectFrom('connection_history')
    .select(['connection_id', 'node_id', 'inbound_tag', 'port', 'client_ip_sealed', 'opened_at', 'closed_at', sql<string>`uplink::text`.as('uplink'), sql<string>`downlink::text`.as('downlink')])
    .where('user_id', '=', userId)
    .where('opened_at', '>=', q.from)
    .where('opened_at', '<', q.to);
  if (after) query = query.where(sql<boolean>`(opened_at, connection_id) < (${after.openedAt}, ${after.connectionId})`);
  const rows = await query.orderBy('opened_at', 'desc').orderBy('connection_id', 'desc').limit(q.limit + 1).execute();
  const page = rows.slice(0, q.limit);
  const key = q.openIps && page.some((r) => r.client_ip_sealed) ? await keys.get(userId) : undefined;
  const last = page.at(-1);
  return {
    connections: page.map((r) => ({
      connectionId: r.connection_id,
      nodeId: r.node_id,
      inboundTag: r.inbound_tag,
      port: r.port,
      clientIp: q.openIps ? openIp(key, userId, r.client_ip_sealed) : null,
      openedAt: r.opened_at.toISOString(),
      closedAt: r.closed_at?.toISOString() ?? null,
      uplink: r.uplink,
      downlink: r.downlink,
    })),
    nextCursor: rows.length > q.limit && last ? encodeCursor({ openedAt: last.opened_at, connectionId: last.connection_id }) : null,
  };
}
