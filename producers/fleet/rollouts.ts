/**
 * Rollouts: planning (render every node's template, store it, pick the nodes
 * whose template changes, split them into waves), operator actions, and the
 * agents' reports that move a rollout from wave to wave. Whatever the rollout
 * decider decides, the nodes it concerns are told at once (AgentPush
 * `desired`); an agent that missed the push finds out at its next sync.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { uuidv7 } from '../../contracts/ids.js';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import type { Written } from '../messaging/messaging-deps.js';
import type { ConfigStore } from '../../workers/fleet/config-store.js';
import type { FleetDeps } from './fleet-deps.js';
import { profileAssigned, type InboundProfile } from './model.js';
import { nodeDecider } from './node.decider.js';
import type { Profiles } from './profiles.js';
import { planWaves, rolloutDecider, type NodeReport, type RolloutEventKey, type RolloutTarget } from './rollout.decider.js';

export interface PlanOptions {
  reason?: string;
  /** Share of the nodes after the canary that make up the second wave (default 0.1). */
  waveShare?: number;
  /** Rejections tolerated after the canary before the rollout halts (default 5 % of the nodes). */
  maxRejections?: number;
}

export interface AgentReport {
  nodeId: string;
  template: string;
  version: string;
  rolloutId: string | null;
  outcome: 'applied' | 'rejected';
  restarted: boolean;
  error: string | null;
}

/** Two profiles of one node on one port would make the core fail at start, after `-test` passed. */
function checkPorts(nodeId: string, profiles: readonly InboundProfile[]): void {
  const seen = new Map<number, string>();
  for (const p of profiles) {
    const other = seen.get(p.port);
    if (other) throw new DomainError('port_conflict', `node ${nodeId}: profiles ${other} and ${p.profileId} both listen on port ${p.port}`, { nodeId, port: p.port });
    seen.set(p.port, p.profileId);
  }
}

interface WaitingReports {
  reports: NodeReport[];
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

function withResolvers(): Omit<WaitingReports, 'reports'> {
  let resolve!: () => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // The caller awaits it; a rejection nobody awaits yet must not count as unhandled.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

export class Rollouts {
  private readonly waiting = new Map<string, WaitingReports>();
  private readonly deciding = new Set<string>();

  constructor(
    private readonly d: FleetDeps,
    private readonly profiles: Profiles,
    private readonly configs: ConfigStore,
  ) {}

  /**
   * One planner at a time, in every process: the "no rollout in progress"
   * check reads the read model, so a plan holds the lock until the read model
   * shows its rollout, and the next planner sees it.
   */
  plan(opts: PlanOptions, actor: Actor, now = new Date()): Promise<Written & { rolloutId: string; targets: number }> {
    return this.d.exclusively('relaygrid/fleet/plan', async () => {
      const planned = await this.planNow(opts, actor, now);
      // The rollout stands whatever happens here: a slow read model only lets the next planner wait longer.
      await this.d.fleetReadModelAt(planned.seq).catch((err: unknown) => this.d.log.warn({ err, rolloutId: planned.rolloutId }, 'planned, but the read model is behind'));
      return planned;
    });
  }

  private async planNow(opts: PlanOptions, actor: Actor, now: Date): Promise<Written & { rolloutId: string; targets: number }> {
    await this.d.fleetReadModelAt();
    const active = await this.d.db.selectFrom('fleet_rollouts').select('id').where('status', 'in', ['running', 'paused']).executeTakeFirst();
    if (active) throw new DomainError('invalid_rollout_state', `rollout ${active.id} is still in progress: complete, abort or roll it back first`, { rolloutId: active.id });
    const [profiles, nodes] = await Promise.all([
      this.profiles.forRendering(),
      this.d.db.selectFrom('fleet_nodes').select(['id', 'labels', 'health', 'desired_template']).where('retired', '=', false).orderBy('id').execute(),
    ]);
    const targets: RolloutTarget[] = [];
    for (const node of nodes) {
      const assigned = profiles.filter((p) => profileAssigned(p, node.labels));
      checkPorts(node.id, assigned);
      const template = await this.configs.putTemplate(assigned);
      if (template !== node.desired_template) targets.push({ nodeId: node.id, template, previousTemplate: node.desired_template });
    }
    // The canary should be a node that can answer: healthy ones first, then by name.
    const healthy = new Set(nodes.filter((n) => n.health === 'healthy').map((n) => n.id));
    const order = targets.map((t) => t.nodeId).sort((a, b) => Number(healthy.has(b)) - Number(healthy.has(a)) || a.localeCompare(b));
    const rolloutId = uuidv7(now.getTime());
    const result = await this.d.decide(
      rolloutDecider,
      'rollout',
      rolloutId,
      {
        type: 'PlanRollout',
        rolloutId,
        reason: opts.reason ?? 'configuration changed',
        targets,
        waves: planWaves(order, opts.waveShare ?? 0.1),
        maxRejections: opts.maxRejections ?? Math.floor(targets.length * 0.05),
        by: actor.actor,
        at: now,
      },
      actor,
      true,
    );
    this.announce(result.events, result.seq);
    return { seq: result.seq, rolloutId, targets: targets.length };
  }

  async operate(type: 'Pause' | 'Resume' | 'Abort' | 'RollBack', rolloutId: string, actor: Actor, now = new Date()): Promise<Written> {
    const result = await this.d.decide(rolloutDecider, 'rollout', rolloutId, { type, rolloutId, by: actor.actor, at: now }, actor);
    this.announce(result.events, result.seq);
    return { seq: result.seq };
  }

  /** An agent's report: recorded on the node, and on its rollout when it names one. */
  async report(report: AgentReport, now = new Date()): Promise<void> {
    const actor = { actor: `node:${report.nodeId}` };
    const { nodeId, template, version, rolloutId } = report;
    const command =
      report.outcome === 'applied'
        ? { type: 'ReportApplied' as const, nodeId, template, version, rolloutId, restarted: report.restarted, at: now }
        : { type: 'ReportRejected' as const, nodeId, template, version, rolloutId, error: report.error ?? 'rejected', at: now };
    await this.d.decide(nodeDecider, 'node', nodeId, command, actor);
    if (rolloutId) await this.reportToRollout(rolloutId, { nodeId, outcome: report.outcome, error: report.error });
  }

  /**
   * Group commit: a wave of agents reports within a second, and every report
   * decides on the rollout's one aggregate. Decided one by one they conflict
   * (and after the handler's attempts, fail); so reports wait while a decision
   * is being appended, and the next decision takes all that waited.
   */
  private reportToRollout(rolloutId: string, report: NodeReport): Promise<void> {
    let batch = this.waiting.get(rolloutId);
    if (!batch) {
      batch = { reports: [], ...withResolvers() };
      this.waiting.set(rolloutId, batch);
    }
    batch.reports.push(report);
    if (!this.deciding.has(rolloutId)) void this.decideWaiting(rolloutId);
    return batch.promise;
  }

  private async decideWaiting(rolloutId: string): Promise<void> {
    this.deciding.add(rolloutId);
    try {
      for (let batch = this.waiting.get(rolloutId); batch; batch = this.waiting.get(rolloutId)) {
        this.waiting.delete(rolloutId);
        try {
          const result = await this.d.decide(rolloutDecider, 'rollout', rolloutId, { type: 'ReportNodes', rolloutId, reports: batch.reports, at: new Date() }, { actor: 'system:fleet' });
          this.announce(result.events, result.seq);
          batch.resolve();
        } catch (err) {
          batch.reject(err);
        }
      }
    } finally {
      this.deciding.delete(rolloutId);
    }
  }

  /** Tells the nodes of every wave started or rolled back that their desired template changed. */
  private announce(events: readonly DomainEvent<RolloutEventKey>[], seq: number): void {
    for (const event of events) {
      if (event.type === 'fleet.RolloutWaveStarted' || event.type === 'fleet.RolloutRolledBack') {
        for (const nodeId of event.data.nodeIds) this.d.push(nodeId, { type: 'desired', minSeq: seq });
      }
    }
  }
}
