/**
 * Ingesting connection reports: the connections a node's core opened or
 * closed in one interval. Like a usage tick, a report is a record, not a
 * decision: appended without an expectation, its report id as the event id,
 * so a resend from the agent's spool is stored once (and the history's upsert
 * by connection id makes a late copy harmless too).
 *
 * The agent sends client IPs in plain text (it holds no person keys); each is
 * sealed here with its user's data key before anything is written, so the
 * log and the read model only ever hold the sealed IP. A user without a key
 * (forgotten, or no such user) gets no IP at all.
 */
import type { ConnectionRecordV1, ConnectionsReportedV1 } from '../../contracts/catalogue.generated.js';
import { DomainError } from '../decider.js';
import type { EventStore } from '../event-store/event-store.js';
import type { PersonKeys } from '../identity/crypto/person-keys.js';
import { seal } from '../identity/crypto/sealing.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** Connections per report: about 250 bytes of JSON each keeps a report well under NATS's 1 MiB max_payload. */
export const MAX_CONNECTIONS_PER_REPORT = 2_000;
/** An IPv4 or IPv6 address as the agent reads it from the access log (no port, no brackets). */
const IP = /^[0-9A-Fa-f.:]{2,45}$/;

/** One connection as an agent reports it (JSON: bytes as decimal strings, times as ISO strings, the IP in plain text). */
export interface ConnectionWire {
  connectionId: string;
  userId: string;
  inboundTag: string | null;
  port: number | null;
  clientIp: string;
  openedAt: string;
  closedAt: string | null;
  uplink: string;
  downlink: string;
}

export interface ConnectionsWire {
  reportId: string;
  connections: ConnectionWire[];
}

/** A connection report the agent got wrong: 400 invalid_report naming the field. */
const invalid = (field: string, message: string) => new DomainError('invalid_report', `${field}: ${message}`, { field });

const bytes = (field: string, value: unknown): bigint => {
  if (typeof value !== 'string' || !/^\d{1,19}$/.test(value)) throw invalid(field, 'must be a whole number of bytes, as a decimal string');
  return BigInt(value);
};

const time = (field: string, value: unknown): Date => {
  const at = typeof value === 'string' ? new Date(value) : new Date(NaN);
  if (Number.isNaN(at.getTime())) throw invalid(field, 'must be an ISO time');
  return at;
};

/** Checks a report from the wire (plain IPs still in it); the node id comes from the subject, never from the body. */
export function parseConnections(wire: ConnectionsWire): { reportId: string; connections: Array<Omit<ConnectionRecordV1, 'clientIpSealed'> & { clientIp: string }> } {
  if (typeof wire?.reportId !== 'string' || !UUID.test(wire.reportId)) throw invalid('reportId', 'must be a UUID');
  if (!Array.isArray(wire.connections) || wire.connections.length > MAX_CONNECTIONS_PER_REPORT) throw invalid('connections', `at most ${MAX_CONNECTIONS_PER_REPORT} per report; split it`);
  const connections = wire.connections.map((c, i) => {
    const at = `connections.${i}`;
    if (typeof c?.connectionId !== 'string' || !UUID.test(c.connectionId)) throw invalid(`${at}.connectionId`, 'must be a UUID');
    if (typeof c.userId !== 'string' || c.userId.length === 0 || c.userId.length > 64) throw invalid(`${at}.userId`, 'must be a user id');
    if (typeof c.clientIp !== 'string' || !IP.test(c.clientIp)) throw invalid(`${at}.clientIp`, 'must be an IP address');
    if (c.inboundTag !== null && (typeof c.inboundTag !== 'string' || c.inboundTag.length > 128)) throw invalid(`${at}.inboundTag`, 'must be null or a tag');
    if (c.port !== null && (!Number.isInteger(c.port) || c.port < 1 || c.port > 65_535)) throw invalid(`${at}.port`, 'must be null or a port');
    const openedAt = time(`${at}.openedAt`, c.openedAt);
    const closedAt = c.closedAt === null ? null : time(`${at}.closedAt`, c.closedAt);
    if (closedAt && closedAt < openedAt) throw invalid(`${at}.closedAt`, 'must not be before openedAt');
    return { connectionId: c.connectionId, userId: c.userId, inboundTag: c.inboundTag, port: c.port, clientIp: c.clientIp, openedAt, closedAt, uplink: bytes(`${at}.uplink`, c.uplink), downlink: bytes(`${at}.downlink`, c.downlink) };
  });
  return { reportId: wire.reportId, connections };
}

/** Seals `ip` for `userId`, or null when the user has no key. The user id is the additional data, as for every sealed personal field. */
export function sealIp(keys: ReadonlyMap<string, Buffer>, userId: string, ip: string): Buffer | null {
  const key = keys.get(userId);
  return key ? seal(key, userId, ip) : null;
}

/** Seals the report's IPs and appends it to the node's `usage.connections` subject. */
export async function appendConnections(store: EventStore, keys: PersonKeys, nodeId: string, wire: ConnectionsWire): Promise<{ seq: number; duplicate: boolean }> {
  const { reportId, connections } = parseConnections(wire);
  const userKeys = await keys.getMany(connections.map((c) => c.userId));
  const data: ConnectionsReportedV1 = {
    reportId,
    nodeId,
    connections: connections.map(({ clientIp, ...c }) => ({ ...c, clientIpSealed: sealIp(userKeys, c.userId, clientIp) })),
  };
  const result = await store.append(store.names.aggregate('usage', 'connections', nodeId), [{ type: 'usage.ConnectionsReported', data }], {
    expectedSeq: null,
    meta: { source: 'relaygrid/fleet', actor: `node:${nodeId}` },
    ids: [reportId],
  });
  return { seq: result.seq, duplicate: result.duplicate };
}
