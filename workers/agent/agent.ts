/**
 * The node agent (`relaygrid agent`): keeps one node's proxy core running the
 * configuration the fleet wants, and reports back.
 *
 * - Serves the last good configuration from its state directory at once, even
 *   before NATS answers.
 * - Syncs on a push and every `syncIntervalMs` (so a missed push or an agent
 *   that was offline catches up): asks for its desired version, fetches it,
 *   and applies it:
 *   - inbounds changed (or HTTP/SOCKS accounts, which the core cannot change
 *     live): validate with the core (`-test`), write atomically, restart; a
 *     rejected configuration is reported with the core's error text and the
 *     last good one keeps running;
 *   - only users changed: add and remove them through the core's
 *     HandlerService and write the file, no restart, no dropped connection.
 * - Applies pushed user changes through the HandlerService at once.
 * - Closes the open connections of every user it removes from an inbound
 *   (ConnectionTracker): the core itself would let them run on.
 * - Reports applied/rejected when its template or rollout changes (not for
 *   every users-only version), heartbeats, and sends usage ticks through its
 *   spool.
 * - Reports the connections its core opened and closed (the history) through
 *   a second spool, publishes each user's live client IPs when they change
 *   (the fleet's IP limit), and closes a user's connections from one IP when
 *   the fleet says that user is over their limit.
 * - On an edge node (`edge`), keeps its edge serving the fleet's sites
 *   (./edge/edge-driver.ts), on `edge` pushes and its own timer.
 */
import { randomUUID } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../../infra/logger.js';
import type { Names } from '../../infra/naming.js';
import type { AgentOp } from '../../infra/naming.js';
import type { CoreConfig } from '../fleet/render/core-config.js';
import { inboundsSignature, usersByInbound, type InboundUsers } from '../fleet/render/render.js';
import { CONFIG_CHUNK_BYTES, HEARTBEAT_INTERVAL_MS, type AgentPush, type AgentReply, type ConfigReply, type ConnectionsWire, type DesiredReply, type HeartbeatMessage, type IpsMessage, type ReportRequest } from '../fleet/agent-protocol.js';
import { isAlreadyApplied } from './core/core-api.js';
import type { CoreDriver, CoreUser } from './core/driver.js';
import { ticksOf } from '../../producers/usage/usage-ticks.js';
import { MAX_CONNECTIONS_PER_REPORT } from '../../producers/usage/connection-reports.js';
import { uuidv7 } from '../../contracts/ids.js';
import { withAccessLog, withLocalApi } from './core/local-api.js';
import { ConnectionTracker, type Removal } from './connections/connection-tracker.js';
import { sendSpooled, Spool, UsageSpool } from './spool.js';
import type { EdgeDriver } from './edge/edge-driver.js';

export interface AgentOptions {
  /** The connection, unless given to start() (the agent process serves its last good configuration before NATS answers). */
  nc?: NatsConnection;
  names: Names;
  nodeId: string;
  stateDir: string;
  driver: CoreDriver;
  /** Port of the core's API inbound on 127.0.0.1 (withLocalApi). */
  apiPort: number;
  log: Logger;
  syncIntervalMs?: number;
  heartbeatIntervalMs?: number;
  usageIntervalMs?: number;
  requestTimeoutMs?: number;
  /**
   * Close a removed user's open connections (the access log FIFO and `ss -K`):
   * on unless false. The benches with a thousand acknowledge-only agents turn it off.
   */
  cutConnections?: boolean;
  /** How often connections whose sockets are gone leave the table, and every user's live IPs are published again. */
  connectionPruneIntervalMs?: number;
  /** An edge node's edge driver: it starts, syncs and stops with the agent, on the agent's connection. */
  edge?: EdgeDriver;
}

/** Users per published IP message: about 80 bytes each, far under NATS's max_payload. */
const USERS_PER_IPS_MESSAGE = 2_000;
/** Changes to users' IPs within this long go out in one message. */
const IPS_DEBOUNCE_MS = 10;

interface Applied {
  template: string;
  version: string;
  rolloutId: string | null;
  config: CoreConfig;
}

const LIVE_KINDS = new Set(['vless', 'vless-tls', 'vless-reality', 'trojan-tls']);

export class AgentRequestError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The core was already in the wanted state (the user existed, or did not): nothing to do. */
function ignoreAlreadyApplied(err: unknown): void {
  if (!isAlreadyApplied(err)) throw err;
}

const sameUser = (a: CoreUser | undefined, b: CoreUser) => a !== undefined && JSON.stringify(a.account) === JSON.stringify(b.account) && (a.level ?? 0) === (b.level ?? 0);

export class NodeAgent {
  private readonly spool: UsageSpool;
  /** Connection reports: they hold client IPs in plain text until the fleet seals them (the file is 0600). */
  private readonly connectionSpool: Spool<ConnectionsWire>;
  private ipsTimer: NodeJS.Timeout | null = null;
  /** A report still sending: the next interval skips rather than send the spool twice at once. */
  private reporting = false;
  private readonly configPath: string;
  private readonly lastGoodPath: string;
  private readonly statePath: string;
  private applied: Applied | null = null;
  /** The users the running core has, per inbound: what the HandlerService was told, or what the core started with. */
  private running = new Map<string, InboundUsers>();
  private coreRunning = false;
  /** A template the core refused: not tried again (a users-only change makes a new version of it) until the fleet moves on. */
  private rejectedTemplate: string | null = null;
  private unreported: ReportRequest | null = null;
  private reported: { template: string; rolloutId: string | null } | null = null;
  private serial: Promise<unknown> = Promise.resolve();
  private syncWanted: number | null = null;
  private syncScheduled = false;
  private stopped = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private sub?: Subscription;
  private nc?: NatsConnection;
  private resumed = false;
  private intervalStart = new Date();
  /** Counters for tests and the bench. */
  readonly stats = { syncs: 0, restarts: 0, liveUserChanges: 0, ticksSent: 0, connectionReportsSent: 0, ipCuts: 0 };
  /** Who is connected, and the cut; null when cutConnections is off. */
  readonly connections: ConnectionTracker | null;
  /** Users removed from an inbound whose open connections are still to be closed. */
  private pendingCuts: Removal[] = [];

  constructor(private readonly o: AgentOptions) {
    this.spool = new UsageSpool(join(o.stateDir, 'usage-spool.ndjson'));
    this.connectionSpool = new Spool(join(o.stateDir, 'connections-spool.ndjson'), (r) => r.reportId);
    this.configPath = join(o.stateDir, 'config.json');
    this.lastGoodPath = join(o.stateDir, 'last-good.json');
    this.statePath = join(o.stateDir, 'applied.json');
    o.driver.onExit = (code, signal) => this.coreExited(code, signal);
    this.connections = o.cutConnections === false ? null : new ConnectionTracker({ fifoPath: join(o.stateDir, 'access-log.fifo'), log: o.log, onIpsChanged: () => this.ipsChanged() });
  }

  get appliedVersion(): string | null {
    return this.applied?.version ?? null;
  }

  get appliedTemplate(): string | null {
    return this.applied?.template ?? null;
  }

  /** Serves the last good configuration from the state directory, without NATS. start() does it when it has not been done. */
  async resume(): Promise<void> {
    if (this.resumed) return;
    this.resumed = true;
    await mkdir(this.o.stateDir, { recursive: true });
    await this.spool.load();
    await this.connectionSpool.load();
    // Before any core starts: it opens the FIFO for writing.
    await this.connections?.open();
    await this.resumeLastGood();
    await this.o.edge?.resume();
  }

  async start(nc = this.o.nc): Promise<void> {
    if (!nc) throw new Error('NodeAgent.start: no NATS connection');
    this.nc = nc;
    await this.resume();
    this.sub = this.nc.subscribe(this.o.names.fleetPush(this.o.nodeId), { callback: (err, msg) => (err ? this.o.log.warn({ err }, 'push subscription failed') : this.onPush(msg.string())) });
    this.requestSync(0);
    this.o.edge?.start((op, body) => this.request(op, body));
    const every = (ms: number, fn: () => void) => {
      const t = setInterval(fn, ms);
      t.unref();
      this.timers.push(t);
    };
    every(this.o.syncIntervalMs ?? 30_000, () => this.requestSync(0));
    every(this.o.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS, () => this.heartbeat());
    every(this.o.usageIntervalMs ?? 10_000, () => void this.exclusive(() => this.collectUsage()).catch((err: unknown) => this.o.log.warn({ err }, 'usage collection failed')));
    every(this.o.usageIntervalMs ?? 10_000, () => void this.reportConnections().catch((err: unknown) => this.o.log.warn({ err }, 'connection report failed')));
    if (this.connections) every(this.o.connectionPruneIntervalMs ?? 15_000, () => void this.pruneConnections());
    this.heartbeat();
  }

  /** Stops syncing and reporting, after whatever is running finishes; the core (and the edge) keep running unless `stopCore`. */
  async stop(stopCore = true): Promise<void> {
    this.quiesce();
    await this.serial.catch(() => undefined);
    await this.o.edge?.stop(stopCore);
    if (stopCore) await this.stopCore();
    this.connections?.close();
  }

  /** No more syncs, pushes, heartbeats or usage from now on. */
  private quiesce(): void {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    if (this.ipsTimer) clearTimeout(this.ipsTimer);
    this.sub?.unsubscribe();
  }

  private async stopCore(): Promise<void> {
    this.o.driver.onExit = undefined;
    await this.o.driver.stop();
    this.coreRunning = false;
  }

  /** Runs `fn` after everything queued before it: syncs, pushes and usage never interleave. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.serial.then(fn, fn);
    this.serial = run.catch(() => undefined);
    return run;
  }

  requestSync(minSeq: number): void {
    this.syncWanted = Math.max(this.syncWanted ?? 0, minSeq);
    if (this.syncScheduled || this.stopped) return;
    this.syncScheduled = true;
    void this.exclusive(async () => {
      this.syncScheduled = false;
      const wanted = this.syncWanted ?? 0;
      this.syncWanted = null;
      await this.sync(wanted);
    }).catch((err: unknown) => {
      // Soon, not at the next interval (a report the fleet could not record holds a rollout's wave),
      // and spread out, so a wave of agents that failed together does not retry together.
      const delay = 1_000 + Math.random() * 4_000;
      this.o.log.warn({ err, retryInMs: Math.round(delay) }, 'sync failed; retrying');
      if (!this.stopped) setTimeout(() => this.requestSync(0), delay).unref();
    });
  }

  private onPush(text: string): void {
    let push: AgentPush;
    try {
      push = JSON.parse(text) as AgentPush;
    } catch {
      return;
    }
    if (push.type === 'desired') this.requestSync(push.minSeq);
    else if (push.type === 'edge') this.o.edge?.requestSync();
    // At once, not behind a sync: a connection over the limit is moving data meanwhile.
    else if (push.type === 'cut-ip') void this.cutIp(push.userId, push.ip).catch((err: unknown) => this.o.log.warn({ err }, 'closing connections over the IP limit failed'));
    else void this.exclusive(() => this.applyUserPush(push)).catch((err: unknown) => this.o.log.warn({ err }, 'pushed user change failed; the next sync converges'));
  }

  private async request<T>(op: AgentOp, body: unknown): Promise<T> {
    if (!this.nc) throw new AgentRequestError('not_connected', 'the agent has not started');
    const msg = await this.nc.request(this.o.names.fleetAgent(this.o.nodeId, op), JSON.stringify(body), { timeout: this.o.requestTimeoutMs ?? 10_000 });
    const reply = JSON.parse(msg.string()) as AgentReply<T>;
    if (!reply.ok) throw new AgentRequestError(reply.error.code, reply.error.message);
    return reply.result;
  }

  // -- configuration -------------------------------------------------------

  private async resumeLastGood(): Promise<void> {
    const text = await readFile(this.statePath, 'utf8').catch(() => null);
    if (!text) return;
    this.applied = JSON.parse(text) as Applied;
    this.reported = { template: this.applied.template, rolloutId: this.applied.rolloutId };
    // Written again: the local API port may differ from the last run's.
    await this.writeAtomically(this.configPath, this.applied.config);
    if (await this.startLastGood()) this.o.log.info({ version: this.applied.version }, 'serving the last good configuration');
  }

  /**
   * Starts the core with the file on disk, the last good configuration. While
   * it does not start the node is not serving (heartbeats say so), and it is
   * tried again every second.
   */
  private async startLastGood(): Promise<boolean> {
    try {
      await this.o.driver.start(this.configPath);
      this.coreRunning = true;
      this.connections?.coreStarted();
      // The core started from the file: users pushed since it was written come back at the next sync.
      this.running = usersByInbound(this.applied!.config);
      return true;
    } catch (err) {
      this.coreRunning = false;
      this.heartbeat();
      this.o.log.error({ err }, 'the last good configuration does not start; trying again in a second');
      this.retryLastGoodLater();
      return false;
    }
  }

  private retryLastGoodLater(): void {
    if (this.stopped || !this.applied) return;
    setTimeout(() => {
      void this.exclusive(async () => {
        if (this.stopped || this.coreRunning) return;
        if (await this.startLastGood()) this.stats.restarts++;
      });
    }, 1_000).unref();
  }

  private async sync(minSeq: number): Promise<void> {
    if (this.stopped) return;
    this.stats.syncs++;
    await this.flushReport();
    const desired = await this.request<DesiredReply>('desired', { minSeq });
    if (desired.retired) {
      // Inside the queue: stop() would wait for this very sync to finish.
      this.o.log.warn('this node was retired: stopping the core');
      this.quiesce();
      await this.o.edge?.stop();
      await this.stopCore();
      return;
    }
    if (!desired.version || !desired.template) return;
    if (desired.version === this.applied?.version) return this.noteReport(desired, 'applied', false, null);
    if (desired.template === this.rejectedTemplate) return;
    const config = JSON.parse((await this.fetchConfig(desired.version)).toString('utf8')) as CoreConfig;
    if (this.needsRestart(config)) await this.applyWithRestart(desired, config);
    else await this.applyLive(desired, config);
  }

  private async fetchConfig(version: string): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let offset = 0;
    for (;;) {
      const part = await this.request<ConfigReply>('config', { version, offset });
      const bytes = Buffer.from(part.data, 'base64');
      chunks.push(bytes);
      offset += bytes.length;
      if (offset >= part.total || bytes.length < CONFIG_CHUNK_BYTES) return Buffer.concat(chunks);
    }
  }

  /** A restart is needed when inbounds changed, or HTTP/SOCKS accounts (the core cannot change those live). */
  private needsRestart(next: CoreConfig): boolean {
    if (!this.applied || !this.coreRunning) return true;
    if (inboundsSignature(next) !== inboundsSignature(this.applied.config)) return true;
    for (const [tag, inbound] of usersByInbound(next)) {
      if (LIVE_KINDS.has(inbound.kind)) continue;
      const now = this.running.get(tag)?.users ?? new Map<string, CoreUser>();
      if (now.size !== inbound.users.size || [...inbound.users].some(([email, user]) => !sameUser(now.get(email), user))) return true;
    }
    return false;
  }

  private async writeAtomically(path: string, config: CoreConfig): Promise<void> {
    const tmp = `${path}.${randomUUID()}.tmp`;
    const local = withLocalApi(config, this.o.apiPort);
    await writeFile(tmp, JSON.stringify(this.connections?.opened ? withAccessLog(local, this.connections.accessLogPath) : local, null, 2), { mode: 0o600, flush: true });
    await rename(tmp, path);
  }

  private async applyWithRestart(desired: DesiredReply, config: CoreConfig): Promise<void> {
    const candidate = join(this.o.stateDir, 'candidate.json');
    await this.writeAtomically(candidate, config);
    const error = await this.o.driver.test(candidate);
    if (error) {
      await rm(candidate, { force: true });
      this.rejectedTemplate = desired.template;
      this.o.log.warn({ version: desired.version, error }, 'the core rejected the configuration; keeping the last good one');
      return this.noteReport(desired, 'rejected', false, error);
    }
    const hadConfig = this.applied !== null;
    if (hadConfig) await copyFile(this.configPath, this.lastGoodPath);
    await rename(candidate, this.configPath);
    try {
      await this.o.driver.start(this.configPath);
    } catch (err) {
      // Passed -test but does not run (a port taken, say): back to the last good one.
      const error = (err as Error).message;
      this.rejectedTemplate = desired.template;
      // The failed start ended the old core: nothing runs until the last good one starts again.
      this.coreRunning = false;
      if (hadConfig) {
        await rename(this.lastGoodPath, this.configPath);
        await this.startLastGood();
      }
      this.o.log.warn({ version: desired.version, error }, 'the core did not start with the configuration; back to the last good one');
      return this.noteReport(desired, 'rejected', false, error);
    }
    this.coreRunning = true;
    // The restart closed every connection: HTTP/SOCKS users removed this way are cut too.
    this.connections?.coreStarted();
    this.stats.restarts++;
    this.running = usersByInbound(config);
    await this.remember(desired, config);
    await this.noteReport(desired, 'applied', true, null);
  }

  /** Users only: the difference goes through the HandlerService, then the file follows so a restart agrees. */
  private async applyLive(desired: DesiredReply, config: CoreConfig): Promise<void> {
    for (const [tag, inbound] of usersByInbound(config)) {
      const current = this.running.get(tag);
      if (!current || !LIVE_KINDS.has(inbound.kind)) continue;
      for (const email of [...current.users.keys()]) if (!inbound.users.has(email)) await this.removeUser(tag, email);
      for (const user of inbound.users.values()) await this.addUser(tag, user);
    }
    await this.cutRemoved();
    await this.writeAtomically(this.configPath, config);
    await this.remember(desired, config);
    await this.noteReport(desired, 'applied', false, null);
  }

  private async remember(desired: DesiredReply, config: CoreConfig): Promise<void> {
    this.applied = { template: desired.template!, version: desired.version!, rolloutId: desired.rolloutId, config };
    this.rejectedTemplate = null;
    const tmp = `${this.statePath}.tmp`;
    // It holds the whole configuration: every user's credentials and the REALITY private key.
    await writeFile(tmp, JSON.stringify(this.applied), { mode: 0o600, flush: true });
    await rename(tmp, this.statePath);
  }

  private async addUser(tag: string, user: CoreUser): Promise<void> {
    const inbound = this.running.get(tag);
    if (!inbound || sameUser(inbound.users.get(user.email), user)) return;
    // The core keys users by email: new credentials for a known user mean remove, then add.
    if (inbound.users.has(user.email)) await this.removeUser(tag, user.email);
    await this.o.driver.addUser(tag, user).catch(ignoreAlreadyApplied);
    inbound.users.set(user.email, user);
    this.stats.liveUserChanges++;
  }

  private async removeUser(tag: string, email: string): Promise<void> {
    const inbound = this.running.get(tag);
    if (!inbound?.users.has(email)) return;
    await this.o.driver.removeUser(tag, email).catch(ignoreAlreadyApplied);
    inbound.users.delete(email);
    this.stats.liveUserChanges++;
    const port = this.inboundPort(tag);
    if (port !== null) this.pendingCuts.push({ port, email });
  }

  private inboundPort(tag: string): number | null {
    const inbound = this.applied?.config.inbounds.find((i) => i.tag === tag);
    return inbound ? inbound.port : null;
  }

  /**
   * Closes the open connections of the users just removed (new credentials
   * for a user count: the old ones' connections end). A failure is logged,
   * not thrown: the removal itself is done and the next one tries again.
   */
  private async cutRemoved(): Promise<void> {
    const removals = this.pendingCuts;
    this.pendingCuts = [];
    if (!this.connections || removals.length === 0) return;
    const tagOf = new Map((this.applied?.config.inbounds ?? []).map((i) => [i.port, i.tag]));
    try {
      await this.connections.cut(removals, ({ port, email }) => {
        const tag = tagOf.get(port);
        return tag !== undefined && this.running.get(tag)?.users.has(email) === false;
      });
    } catch (err) {
      this.o.log.warn({ err, users: removals.length }, 'closing removed users’ connections failed');
    }
  }

  /** Ports of the inbounds whose connections the table follows (those of users the core changes live). */
  private livePorts(): number[] {
    return (this.applied?.config.inbounds ?? []).filter((i) => LIVE_KINDS.has(this.running.get(i.tag)?.kind ?? '')).map((i) => i.port);
  }

  private async pruneConnections(): Promise<void> {
    if (!this.connections || !this.applied || !this.coreRunning) return;
    await this.connections.prune(this.livePorts()).catch((err: unknown) => this.o.log.warn({ err }, 'pruning the connection table failed'));
    // A snapshot of every connected user's IPs: a worker that (re)started, or missed a message, catches up.
    this.publishIps([...this.connections.table.users()]);
  }

  private async cutIp(userId: string, ip: string): Promise<void> {
    if (!this.connections || !this.coreRunning) return;
    this.stats.ipCuts += await this.connections.cutIp(userId, ip, this.livePorts());
  }

  // -- connections -----------------------------------------------------------

  private ipsChanged(): void {
    if (this.ipsTimer || this.stopped) return;
    this.ipsTimer = setTimeout(() => {
      this.ipsTimer = null;
      if (this.connections) this.publishIps(this.connections.log.takeChangedUsers());
    }, IPS_DEBOUNCE_MS);
    this.ipsTimer.unref();
  }

  /** Each user's live IPs (none: the user left), in messages every fleet worker hears; valid for three snapshot intervals. */
  private publishIps(userIds: readonly string[]): void {
    if (!this.connections || !this.nc || this.stopped || userIds.length === 0) return;
    const ttlMs = 3 * (this.o.connectionPruneIntervalMs ?? 15_000);
    for (let i = 0; i < userIds.length; i += USERS_PER_IPS_MESSAGE) {
      const users = userIds.slice(i, i + USERS_PER_IPS_MESSAGE).map((userId) => ({ userId, ips: [...this.connections!.table.ipsSince(userId)].map(([ip, since]) => ({ ip, since: since.toISOString() })) }));
      this.nc.publish(this.o.names.fleetAgent(this.o.nodeId, 'ips'), JSON.stringify({ ttlMs, users } satisfies IpsMessage));
    }
  }

  /** Spools the connections opened and closed since the last report, and sends whatever the spool holds. */
  async reportConnections(): Promise<void> {
    if (!this.connections || this.reporting) return;
    this.reporting = true;
    try {
      await this.reportConnectionsNow();
    } finally {
      this.reporting = false;
    }
  }

  private async reportConnectionsNow(): Promise<void> {
    if (!this.connections) return;
    const records = this.connections.log.takeRecords();
    for (let i = 0; i < records.length; i += MAX_CONNECTIONS_PER_REPORT) {
      await this.connectionSpool.add({ reportId: uuidv7(), connections: records.slice(i, i + MAX_CONNECTIONS_PER_REPORT) });
    }
    this.stats.connectionReportsSent += await this.sendSpooled(this.connectionSpool, 'connections', (r) => r.reportId, 'invalid_report');
  }

  private async applyUserPush(push: Extract<AgentPush, { type: 'users' }>): Promise<void> {
    if (!this.applied || !this.coreRunning) return;
    let accountsChanged = false;
    for (const { tag, email } of push.remove) {
      const inbound = this.running.get(tag);
      if (!inbound) continue;
      if (LIVE_KINDS.has(inbound.kind)) await this.removeUser(tag, email);
      else accountsChanged ||= inbound.users.has(email);
    }
    for (const { tag, user } of push.add) {
      const inbound = this.running.get(tag);
      if (!inbound) continue;
      if (LIVE_KINDS.has(inbound.kind)) await this.addUser(tag, user);
      else accountsChanged ||= !sameUser(inbound.users.get(user.email), user);
    }
    await this.cutRemoved();
    // HTTP/SOCKS accounts change only with a restart, which the next version brings.
    if (accountsChanged) this.requestSync(0);
  }

  // -- reporting -------------------------------------------------------------

  /** Reports when the template or the rollout changed (users-only versions are not news), or a rejection. */
  private async noteReport(desired: DesiredReply, outcome: 'applied' | 'rejected', restarted: boolean, error: string | null): Promise<void> {
    const template = desired.template!;
    if (outcome === 'applied' && this.reported?.template === template && this.reported.rolloutId === desired.rolloutId) return;
    this.unreported = { template, version: desired.version!, rolloutId: desired.rolloutId, outcome, restarted, error };
    await this.flushReport();
  }

  private async flushReport(): Promise<void> {
    const report = this.unreported;
    if (!report) return;
    await this.request('report', report);
    this.unreported = null;
    if (report.outcome === 'applied') this.reported = { template: report.template, rolloutId: report.rolloutId };
  }

  private heartbeat(): void {
    if (this.stopped) return;
    this.nc?.publish(this.o.names.fleetAgent(this.o.nodeId, 'heartbeat'), JSON.stringify({ coreRunning: this.coreRunning, version: this.applied?.version ?? null, connectionCut: this.connections?.support ?? 'off' } satisfies HeartbeatMessage));
  }

  private coreExited(code: number | null, signal: NodeJS.Signals | null): void {
    this.coreRunning = false;
    this.heartbeat();
    this.o.log.error({ code, signal }, 'the core exited; restarting it with the last good configuration');
    this.retryLastGoodLater();
  }

  // -- usage -----------------------------------------------------------------

  /** Reads and resets the core's counters, spools them as ticks, and sends whatever the spool holds. */
  async collectUsage(): Promise<void> {
    if (this.coreRunning) {
      const end = new Date();
      const traffic = await this.o.driver.takeUserTraffic();
      const start = this.intervalStart;
      this.intervalStart = end;
      for (const tick of ticksOf(traffic, start, end)) await this.spool.add(tick);
    }
    this.stats.ticksSent += await this.sendSpooled(this.spool, 'usage', (t) => t.tickId, 'invalid_tick');
  }

  /** Sends a spool's records in order, removing those the fleet took; answers how many. */
  private sendSpooled<T>(spool: Spool<T>, op: AgentOp, idOf: (record: T) => string, invalidCode: string): Promise<number> {
    return sendSpooled(
      spool,
      idOf,
      (record) => this.request(op, record),
      (err) => err instanceof AgentRequestError && err.code === invalidCode,
      (err, id) => this.o.log.error({ err, id, op }, 'the fleet refused a spooled record; dropping it'),
    );
  }
}
