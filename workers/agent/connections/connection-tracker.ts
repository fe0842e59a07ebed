/**
 * The agent's view of who is connected through its core, and the cut: when a
 * user is removed from an inbound, the core refuses their new connections
 * but keeps serving the open ones (it checks credentials only at the
 * handshake), so the agent closes those itself.
 *
 * The access log (a FIFO, see AccessFifo) names the user of each accepted
 * connection with its client endpoint; the table keeps endpoint → user; a cut
 * destroys the sockets on the inbound's port whose peer is one of the user's
 * endpoints (SocketKiller). Lines can trail the removal by a moment (the core
 * logs from a queue), so a second pass follows shortly after for users still
 * removed. Where the kernel refuses, the cut reports `unsupported` (log line,
 * heartbeat field) and the agent goes on: the user's new connections are
 * refused all the same.
 */
import type { Logger } from '../../../infra/logger.js';
import { AccessFifo } from './access-fifo.js';
import { parseAccessLine } from './access-log.js';
import { ConnectionTable } from './connection-table.js';
import { SocketKiller, type KillResult } from './socket-killer.js';

export type CutSupport = 'unknown' | 'ok' | 'unsupported';

export interface Removal {
  /** The inbound's local port: sockets on it are the inbound's connections. */
  port: number;
  email: string;
}

export interface ConnectionTrackerOptions {
  fifoPath: string;
  log: Logger;
  killer?: SocketKiller;
  /** Delay of the second pass, for access lines that trail the removal. */
  followUpMs?: number;
  maxEntries?: number;
}

const DEFAULT_FOLLOW_UP_MS = 250;

export class ConnectionTracker {
  readonly table: ConnectionTable;
  private readonly fifo: AccessFifo;
  private readonly killer: SocketKiller;
  private readonly followUps = new Set<NodeJS.Timeout>();
  support: CutSupport = 'unknown';
  readonly stats = { cuts: 0, socketsClosed: 0, linesRead: 0 };

  constructor(private readonly o: ConnectionTrackerOptions) {
    this.table = new ConnectionTable(o.maxEntries);
    this.killer = o.killer ?? new SocketKiller();
    this.fifo = new AccessFifo(o.fifoPath, (line) => this.onLine(line));
  }

  get accessLogPath(): string {
    return this.fifo.path;
  }

  /** Whether the FIFO is open: only then may the core be told to log into it. */
  opened = false;

  /** Opens the FIFO; where that fails (a state directory that cannot hold one), cuts are `unsupported` and the agent runs on without. */
  async open(): Promise<void> {
    try {
      await this.fifo.open();
      this.opened = true;
    } catch (err) {
      this.support = 'unsupported';
      this.o.log.error({ err, path: this.fifo.path }, 'cannot create the access log FIFO; removed users keep their open connections until they end');
    }
  }

  close(): void {
    for (const t of this.followUps) clearTimeout(t);
    this.followUps.clear();
    this.fifo.close();
  }

  /** A (re)started core has none of the old connections. */
  coreStarted(): void {
    this.table.clear();
  }

  /**
   * Closes the open connections of these users on these ports, now and once
   * more after `followUpMs` for those `stillRemoved` says are still out.
   * Answers the sockets closed by the first pass.
   */
  async cut(removals: readonly Removal[], stillRemoved: (r: Removal) => boolean): Promise<number> {
    if (removals.length === 0) return 0;
    await this.fifo.settled();
    const closed = await this.cutNow(removals);
    const timer = setTimeout(() => {
      this.followUps.delete(timer);
      const still = removals.filter(stillRemoved);
      void this.fifo
        .settled()
        .then(() => this.cutNow(still))
        .catch((err: unknown) => this.o.log.warn({ err }, 'second pass of a connection cut failed'));
    }, this.o.followUpMs ?? DEFAULT_FOLLOW_UP_MS);
    timer.unref();
    this.followUps.add(timer);
    return closed;
  }

  /** Forgets connections whose sockets on these ports are gone (bounded memory between cuts). */
  async prune(ports: readonly number[]): Promise<number> {
    const mark = this.table.mark;
    return this.table.retain(await this.killer.established(ports), mark);
  }

  private async cutNow(removals: readonly Removal[]): Promise<number> {
    const targets = new Map<number, Set<string>>();
    for (const { port, email } of removals) {
      const endpoints = this.table.endpointsOf(email);
      if (endpoints.size === 0) continue;
      let set = targets.get(port);
      if (!set) targets.set(port, (set = new Set()));
      for (const e of endpoints) set.add(e);
    }
    if (targets.size === 0) return 0;
    const result = await this.killer.kill(targets);
    this.note(result);
    this.stats.cuts++;
    this.stats.socketsClosed += result.closed;
    return result.closed;
  }

  private note(result: KillResult): void {
    if (result.unsupported) {
      if (this.support !== 'unsupported') this.o.log.error({ reason: result.unsupported }, 'cannot close open connections on this node (SOCK_DESTROY refused: needs root or CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY); removed users keep their open connections until they end');
      this.support = 'unsupported';
    } else this.support = 'ok';
  }

  private onLine(line: string): void {
    const record = parseAccessLine(line);
    if (!record) return;
    this.stats.linesRead++;
    this.table.record(record.client, record.email);
  }
}
