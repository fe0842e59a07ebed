/**
 * Which user each open connection through the core belongs to: client
 * endpoint (address:port) → user, learned from the access log. An endpoint
 * reused by a later connection belongs to whoever the later line names, so a
 * stale entry can never point a cut at another user's socket. Entries whose
 * socket is gone are pruned against `ss` (retain), and the table is bounded:
 * past `maxEntries` the oldest go first.
 *
 * Each entry is also a connection of the history (an id, when it opened, the
 * inbound, the bytes `ss` last saw), and the table counts each user's
 * connections per client IP, so it can say when a user's set of IPs changed
 * (what the fleet's IP limit counts). A listener hears all three.
 */
import { randomUUID } from 'node:crypto';
import { endpointIp } from './access-log.js';

export interface Connection {
  readonly id: string;
  readonly email: string;
  readonly ip: string;
  readonly openedAt: Date;
  /** Only Xray's access log names the inbound. */
  readonly inboundTag: string | null;
  /** The inbound's local port and the socket's byte counts, from the last `ss` listing that saw it. */
  port: number | null;
  uplink: bigint;
  downlink: bigint;
}

/** What `ss -ti` says of one socket of an inbound. */
export interface SocketInfo {
  localPort: number;
  /** bytes_received: from the client. */
  uplink: bigint;
  /** bytes_sent: to the client. */
  downlink: bigint;
}

export interface TableListener {
  opened?(connection: Connection): void;
  closed?(connection: Connection, at: Date): void;
  /** An open connection's socket was seen for the first time (its port is known now). */
  seen?(connection: Connection): void;
  /** The user's set of distinct client IPs gained or lost one. */
  ipsChanged?(email: string): void;
}

interface Entry {
  connection: Connection;
  /** Order of recording: a prune removes only what was recorded before its socket listing began. */
  seq: number;
}

export class ConnectionTable {
  private readonly owners = new Map<string, Entry>();
  private readonly byUser = new Map<string, Set<string>>();
  /** user → client IP → open connections from it. */
  private readonly ipCounts = new Map<string, Map<string, number>>();
  private seq = 0;
  /** Entries dropped because the table was full (their connections can no longer be cut). */
  evicted = 0;

  constructor(
    private readonly maxEntries = 262_144,
    private readonly listener: TableListener = {},
  ) {}

  get size(): number {
    return this.owners.size;
  }

  /** The current recording position: pass it to retain() to spare entries recorded after it. */
  get mark(): number {
    return this.seq;
  }

  /**
   * A connection the core accepted. A second line for an endpoint the same
   * user holds is the same connection (more requests on it), only refreshed.
   */
  record(endpoint: string, email: string, inboundTag: string | null = null, at = new Date()): void {
    const existing = this.owners.get(endpoint);
    if (existing?.connection.email === email) {
      this.owners.delete(endpoint);
      this.owners.set(endpoint, { connection: existing.connection, seq: ++this.seq });
      return;
    }
    this.forget(endpoint, at);
    const connection: Connection = { id: randomUUID(), email, ip: endpointIp(endpoint), openedAt: at, inboundTag, port: null, uplink: 0n, downlink: 0n };
    // Inserted last, so Map order stays oldest-first for eviction.
    this.owners.set(endpoint, { connection, seq: ++this.seq });
    let endpoints = this.byUser.get(email);
    if (!endpoints) this.byUser.set(email, (endpoints = new Set()));
    endpoints.add(endpoint);
    this.listener.opened?.(connection);
    if (this.countIp(email, connection.ip, 1)) this.listener.ipsChanged?.(email);
    while (this.owners.size > this.maxEntries) {
      this.forget(this.owners.keys().next().value!, at);
      this.evicted++;
    }
  }

  endpointsOf(email: string): ReadonlySet<string> {
    return this.byUser.get(email) ?? new Set();
  }

  /** The client IP of the connection at this endpoint, if the table holds one. */
  ipOf(endpoint: string): string | undefined {
    return this.owners.get(endpoint)?.connection.ip;
  }

  /** Distinct client IPs of a user's open connections: what an IP limit counts. */
  ipsOf(email: string): Set<string> {
    return new Set(this.ipCounts.get(email)?.keys());
  }

  /** Each of the user's client IPs with the time its oldest open connection opened. */
  ipsSince(email: string): Map<string, Date> {
    const since = new Map<string, Date>();
    for (const endpoint of this.endpointsOf(email)) {
      const { ip, openedAt } = this.owners.get(endpoint)!.connection;
      const seen = since.get(ip);
      if (!seen || openedAt < seen) since.set(ip, openedAt);
    }
    return since;
  }

  /** Every user with an open connection. */
  users(): IterableIterator<string> {
    return this.byUser.keys();
  }

  /**
   * Drops entries recorded up to `mark` whose endpoint is not among the `live`
   * sockets, and notes port and bytes of those that are; answers how many went.
   */
  retain(live: ReadonlyMap<string, SocketInfo> | ReadonlySet<string>, mark: number, at = new Date()): number {
    let removed = 0;
    for (const [endpoint, entry] of this.owners) {
      const info = live instanceof Map ? (live as ReadonlyMap<string, SocketInfo>).get(endpoint) : undefined;
      if (info) {
        const first = entry.connection.port === null;
        noteSocket(entry.connection, info);
        if (first) this.listener.seen?.(entry.connection);
      }
      if (entry.seq > mark || live.has(endpoint)) continue;
      this.forget(endpoint, at);
      removed++;
    }
    return removed;
  }

  /** The connection at this endpoint ended (its socket is gone, or was cut); `last` is what `ss` said of it at the end. */
  forget(endpoint: string, at = new Date(), last?: SocketInfo): void {
    const entry = this.owners.get(endpoint);
    if (!entry) return;
    const { connection } = entry;
    if (last) noteSocket(connection, last);
    this.owners.delete(endpoint);
    const endpoints = this.byUser.get(connection.email);
    endpoints?.delete(endpoint);
    if (endpoints?.size === 0) this.byUser.delete(connection.email);
    this.listener.closed?.(connection, at);
    if (this.countIp(connection.email, connection.ip, -1)) this.listener.ipsChanged?.(connection.email);
  }

  /** A (re)started core: every connection ended. */
  clear(at = new Date()): void {
    for (const endpoint of [...this.owners.keys()]) this.forget(endpoint, at);
  }

  /** Counts a connection from `ip` in or out; answers whether the user's set of IPs changed. */
  private countIp(email: string, ip: string, delta: 1 | -1): boolean {
    let counts = this.ipCounts.get(email);
    if (!counts) this.ipCounts.set(email, (counts = new Map<string, number>()));
    const n = (counts.get(ip) ?? 0) + delta;
    if (n > 0) counts.set(ip, n);
    else counts.delete(ip);
    if (counts.size === 0) this.ipCounts.delete(email);
    return n === 0 || (n === 1 && delta === 1);
  }
}

function noteSocket(connection: Connection, info: SocketInfo): void {
  connection.port = info.localPort;
  // Counters of one socket only grow; a smaller one would be a reused endpoint already forgotten.
  if (info.uplink > connection.uplink) connection.uplink = info.uplink;
  if (info.downlink > connection.downlink) connection.downlink = info.downlink;
}
