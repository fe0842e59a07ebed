/**
 * Node health from agent heartbeats. Heartbeats stay in memory; only a change
 * of judgement becomes an event (NodeHealthChanged, deduplicated again by the
 * node decider):
 * - healthy: a heartbeat within `downAfterMs` and the core running (or no
 *   configuration yet, so nothing to run);
 * - degraded: heartbeats arrive but the core that should run does not;
 * - down: no heartbeat for `downAfterMs`.
 * A node never heard from since this process started is judged down only
 * after `downAfterMs` has passed since the start, so a restart of the fleet
 * service does not declare the whole fleet down.
 */
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import type { FleetDeps } from '../../producers/fleet/fleet-deps.js';
import type { NodeHealth } from '../../producers/fleet/model.js';
import { nodeDecider } from '../../producers/fleet/node.decider.js';
import { HEARTBEAT_INTERVAL_MS, type HeartbeatMessage } from './agent-protocol.js';

type Judgement = Exclude<NodeHealth, 'unknown'>;

export class HealthTracker {
  private readonly beats = new Map<string, { at: number; serving: boolean }>();
  private readonly judged = new Map<string, Judgement>();
  /** Nodes whose agent cannot close open connections, as their last heartbeat said. */
  private readonly cutUnsupported = new Set<string>();
  private readonly startedAt = Date.now();
  private timer?: NodeJS.Timeout;
  private sweeping?: Promise<void>;

  constructor(
    private readonly d: FleetDeps,
    private readonly log: Logger,
    private readonly downAfterMs = 3 * HEARTBEAT_INTERVAL_MS,
    private readonly metrics?: Pick<Metrics, 'fleetHealthChanges' | 'fleetCutUnsupported' | 'fleetNodeHealth'>,
  ) {}

  beat(nodeId: string, message: HeartbeatMessage): void {
    const first = !this.beats.has(nodeId);
    this.beats.set(nodeId, { at: Date.now(), serving: message.coreRunning === true || !message.version });
    this.noteCutSupport(nodeId, message.connectionCut === 'unsupported');
    // A node's first heartbeat (or a change in its core) is judged at once, not at the next sweep.
    if (first || this.judge(nodeId) !== this.judged.get(nodeId)) this.kick();
  }

  private noteCutSupport(nodeId: string, unsupported: boolean): void {
    if (unsupported === this.cutUnsupported.has(nodeId)) return;
    if (unsupported) {
      this.cutUnsupported.add(nodeId);
      this.log.warn({ nodeId }, 'node cannot close removed users’ open connections (run its agent as root or with CAP_NET_ADMIN)');
    } else this.cutUnsupported.delete(nodeId);
    this.metrics?.fleetCutUnsupported.set(this.cutUnsupported.size);
  }

  start(intervalMs = 1_000): void {
    this.timer = setInterval(() => this.kick(), intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  private kick(): void {
    this.sweeping ??= this.sweep()
      .catch((err: unknown) => this.log.warn({ err }, 'health sweep failed'))
      .finally(() => (this.sweeping = undefined));
  }

  private judge(nodeId: string): Judgement | undefined {
    const beat = this.beats.get(nodeId);
    const now = Date.now();
    if (!beat) return now - this.startedAt > this.downAfterMs ? 'down' : undefined;
    if (now - beat.at > this.downAfterMs) return 'down';
    return beat.serving ? 'healthy' : 'degraded';
  }

  private async sweep(): Promise<void> {
    const rows = await this.d.db.selectFrom('fleet_nodes').select(['id', 'health']).where('retired', '=', false).execute();
    for (const row of rows) {
      const health = this.judge(row.id);
      if (!health || health === (this.judged.get(row.id) ?? row.health)) continue;
      // Never heard of and never known healthy: nothing to announce.
      if (health === 'down' && row.health === 'unknown' && !this.beats.has(row.id)) continue;
      const reason = health === 'down' ? `no heartbeat for ${this.downAfterMs / 1000} s` : health === 'degraded' ? 'the core is not running' : 'heartbeats arrive and the core runs';
      const { events } = await this.d.decide(nodeDecider, 'node', row.id, { type: 'ReportHealth', nodeId: row.id, health, reason, at: new Date() }, { actor: 'system:fleet-health' });
      if (events.length > 0) this.metrics?.fleetHealthChanges.inc({ health });
      this.judged.set(row.id, health);
    }
    this.reportHealth(rows);
  }

  /** One series per node for its health now; reset first, so a retired node or a health it left has no series. */
  private reportHealth(rows: { id: string; health: string }[]): void {
    const gauge = this.metrics?.fleetNodeHealth;
    if (!gauge) return;
    gauge.reset();
    for (const row of rows) gauge.set({ node: row.id, health: this.judged.get(row.id) ?? row.health }, 1);
  }
}
