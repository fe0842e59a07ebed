/**
 * The agent's edge side (docs/edge.md#adding-an-edge-node): keeps an edge
 * (nginx: workers/edge/nginx/apply.ts) serving the sites the fleet selects
 * for this node, and reports each site's outcome.
 *
 * - resume() starts the edge with the last good version of every site it
 *   knew, before NATS answers.
 * - Syncs on an `edge` push and every `syncIntervalMs`: asks `edge-desired`,
 *   and when its version (a fingerprint of the sites and their versions)
 *   differs from the one last applied, applies it and sends `edge-report`
 *   with every site's outcome. A site the edge rejected is not tried again
 *   until the fleet's fingerprint moves, so a bad site does not make every
 *   sync run `nginx -t`.
 * - Syncs run one at a time; a push during one makes one more after it.
 */
import type { Logger } from '../../../infra/logger.js';
import type { AgentOp } from '../../../infra/naming.js';
import type { EdgeDesired, SiteOutcome } from '../../../producers/edge/model.js';
import type { EdgeDesiredReply, EdgeReportRequest } from '../../fleet/agent-protocol.js';
import { CaddyEdge } from '../../edge/caddy/apply.js';
import { NginxEdge, type NginxEdgeOptions } from '../../edge/nginx/apply.js';
import { sendSpooled } from '../spool.js';
import { EdgeTraffic, type ObservableEdge } from './edge-traffic.js';
import type { EdgeMetrics } from './edge-metrics.js';

/** What the driver needs from an edge: NginxEdge has exactly this shape. */
export interface EdgeBackend {
  start(): Promise<void>;
  apply(desired: EdgeDesired): Promise<SiteOutcome[]>;
  stop(): Promise<void>;
}

/** The agent's request to the fleet on this node's subjects (NodeAgent's credentials and inbox). */
export type FleetRequest = <T>(op: AgentOp, body: unknown) => Promise<T>;

export interface EdgeDriverOptions {
  edge: EdgeBackend;
  log: Logger;
  /** The fallback when a push is lost (default 30 s). */
  syncIntervalMs?: number;
  /** Per-site metrics and traffic ticks from the edge's logs (docs/edge.md#observability), for an edge that offers them. */
  observe?: { nodeId: string; metrics: EdgeMetrics; spoolPath: string; intervalMs?: number };
}

const observable = (edge: EdgeBackend): edge is EdgeBackend & ObservableEdge => 'readTraffic' in edge && 'certificateFiles' in edge && 'servedSites' in edge;

export class EdgeDriver {
  private request: FleetRequest | null = null;
  /** The fingerprint last applied (whatever each site's outcome); null before the first apply of this process. */
  private appliedVersion: number | null = null;
  private unreported: EdgeReportRequest | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  private resumed = false;
  private stopped = false;
  private edgeStopped = false;
  private timer: NodeJS.Timeout | null = null;
  private trafficTimer: NodeJS.Timeout | null = null;
  /** Null when the edge offers no logs to read (Caddy) or no metrics were asked for. */
  readonly traffic: EdgeTraffic | null;
  private collecting: Promise<void> | null = null;
  /** Counters for tests. */
  readonly stats = { syncs: 0, applies: 0, trafficTicksSent: 0 };

  constructor(private readonly o: EdgeDriverOptions) {
    this.traffic = o.observe && observable(o.edge) ? new EdgeTraffic({ edge: o.edge, log: o.log, ...o.observe }) : null;
  }

  /** Serves the last good sites, without the fleet. */
  async resume(): Promise<void> {
    if (this.resumed) return;
    this.resumed = true;
    await this.traffic?.load();
    await this.o.edge.start();
  }

  start(request: FleetRequest): void {
    this.request = request;
    this.timer = setInterval(() => this.requestSync(), this.o.syncIntervalMs ?? 30_000);
    this.timer.unref();
    if (this.traffic) {
      this.trafficTimer = setInterval(() => void this.collectTraffic(), this.o.observe?.intervalMs ?? 10_000);
      this.trafficTimer.unref();
    }
    this.requestSync();
  }

  /** Reads the edge's logs into metrics and a traffic tick, and sends the spooled ticks; one collection at a time. */
  collectTraffic(): Promise<void> {
    if (!this.traffic || this.stopped) return Promise.resolve();
    this.collecting ??= this.collectNow()
      .catch((err: unknown) => this.o.log.warn({ err }, 'edge traffic collection failed'))
      .finally(() => (this.collecting = null));
    return this.collecting;
  }

  private async collectNow(): Promise<void> {
    const traffic = this.traffic!;
    await traffic.collect();
    if (!this.request) return;
    const request = this.request;
    this.stats.trafficTicksSent += await sendSpooled(
      traffic.spool,
      (t) => t.tickId,
      (tick) => request('edge-traffic', tick),
      (err) => (err as { code?: unknown }).code === 'invalid_tick',
      (err, id) => this.o.log.error({ err, id }, 'the fleet refused a traffic tick; dropping it'),
    );
  }

  requestSync(): void {
    if (this.stopped || !this.request) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => (this.running = null));
  }

  /** Stops syncing after the running sync; the edge keeps serving unless `stopEdge`. */
  async stop(stopEdge = true): Promise<void> {
    if (this.trafficTimer) clearInterval(this.trafficTimer);
    // The last interval's traffic is spooled before the edge goes (sent at the next start).
    if (this.resumed && !this.edgeStopped) await this.collectTraffic();
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    // Once: a retired node's agent stops the edge, then stops again on its way out.
    if (stopEdge && this.resumed && !this.edgeStopped) {
      this.edgeStopped = true;
      await this.o.edge.stop();
    }
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.sync();
      } catch (err) {
        // Spread out, like the proxy side's retries: edge nodes that failed together do not retry together.
        const delay = 1_000 + Math.random() * 4_000;
        this.o.log.warn({ err, retryInMs: Math.round(delay) }, 'edge sync failed; retrying');
        setTimeout(() => this.requestSync(), delay).unref();
        return;
      }
    } while (this.again && !this.stopped);
  }

  private async sync(): Promise<void> {
    this.stats.syncs++;
    await this.flushReport();
    const desired = await this.request!<EdgeDesiredReply>('edge-desired', {});
    if (desired.version === this.appliedVersion || this.stopped) return;
    const outcomes = await this.o.edge.apply(desired);
    this.stats.applies++;
    this.appliedVersion = desired.version;
    const rejected = outcomes.filter((o) => o.status === 'rejected');
    if (rejected.length > 0) this.o.log.warn({ version: desired.version, rejected: rejected.map((o) => o.siteId) }, 'the edge rejected sites; their last good versions keep serving');
    this.unreported = { version: desired.version, outcomes };
    await this.flushReport();
  }

  /** A report the fleet did not take is sent again before the next sync asks anything. */
  private async flushReport(): Promise<void> {
    const report = this.unreported;
    if (!report) return;
    await this.request!('edge-report', report);
    if (this.unreported === report) this.unreported = null;
  }
}

/** The edge driver of `relaygrid agent --edge nginx|caddy`: the same node options, either edge (docs/edge-caddy.md says what Caddy refuses). */
export function edgeDriverOf(kind: 'nginx' | 'caddy', options: NginxEdgeOptions, syncIntervalMs?: number, observe?: EdgeDriverOptions['observe']): EdgeDriver {
  const edge = kind === 'nginx' ? new NginxEdge(options) : new CaddyEdge(options);
  return new EdgeDriver({ edge, log: options.logger, ...(syncIntervalMs === undefined ? {} : { syncIntervalMs }), ...(observe ? { observe } : {}) });
}
