/**
 * What the agent tells the fleet about connections, gathered from the
 * connection table as it changes:
 *
 * - history records: each connection when it opens, when `ss` first sees its
 *   socket (the port), and when it closes (with its last byte counts) — one
 *   record when these fall in one interval — taken by the agent at each report
 *   interval and spooled;
 * - the users whose set of distinct client IPs changed, taken at once (the
 *   fleet's IP limit acts on them; core NATS, not spooled: a live view that
 *   the next change or snapshot supersedes).
 */
import type { ConnectionWire } from '../../../producers/usage/connection-reports.js';
import type { Connection, TableListener } from './connection-table.js';

interface Pending {
  connection: Connection;
  closedAt: Date | null;
}

export class ConnectionLog implements TableListener {
  private pending = new Map<string, Pending>();
  private dirty = new Set<string>();

  /** Called when a user's IPs changed (after the table's own bookkeeping). */
  constructor(private readonly onIpsChanged: () => void = () => undefined) {}

  opened(connection: Connection): void {
    this.pending.set(connection.id, { connection, closedAt: null });
  }

  /** Reported again with its port, unless a record of it is pending anyway (it will carry the port). */
  seen(connection: Connection): void {
    if (!this.pending.has(connection.id)) this.pending.set(connection.id, { connection, closedAt: null });
  }

  closed(connection: Connection, at: Date): void {
    this.pending.set(connection.id, { connection, closedAt: at });
  }

  ipsChanged(email: string): void {
    this.dirty.add(email);
    this.onIpsChanged();
  }

  /** The records since the last take, with each connection's port and bytes as known now. */
  takeRecords(): ConnectionWire[] {
    const taken = [...this.pending.values()];
    this.pending = new Map();
    return taken.map(({ connection: c, closedAt }) => ({
      connectionId: c.id,
      userId: c.email,
      inboundTag: c.inboundTag,
      port: c.port,
      clientIp: c.ip,
      openedAt: c.openedAt.toISOString(),
      closedAt: closedAt?.toISOString() ?? null,
      uplink: c.uplink.toString(),
      downlink: c.downlink.toString(),
    }));
  }

  takeChangedUsers(): string[] {
    const users = [...this.dirty];
    this.dirty = new Set();
    return users;
  }
}
