/**
 * A rollout (`<ns>.evt.fleet.rollout.<rolloutId>`): the state machine that
 * moves nodes to new inbound templates in waves.
 *
 *   planned → wave 0 (the canary) → wave 1 (a share) → … → completed
 *                  ↘ halted (the canary rejected, or more rejections than allowed)
 *   running ⇄ paused;  running | paused → aborted;  anything announced → rolled back
 *
 * A wave starts only once every node of the previous one reported. Reports of
 * nodes outside the announced waves, repeated reports and reports after the end
 * record nothing: agents report at least once.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import type { RolloutTargetV1 } from '../../contracts/catalogue.generated.js';
import { DomainError, type Decider } from '../decider.js';

export type RolloutEventKey =
  | 'fleet.RolloutPlanned'
  | 'fleet.RolloutWaveStarted'
  | 'fleet.RolloutNodeReported'
  | 'fleet.RolloutPaused'
  | 'fleet.RolloutResumed'
  | 'fleet.RolloutAborted'
  | 'fleet.RolloutHalted'
  | 'fleet.RolloutCompleted'
  | 'fleet.RolloutRolledBack';

export type RolloutStatus = 'none' | 'running' | 'paused' | 'halted' | 'aborted' | 'completed' | 'rolled_back';
export type RolloutTarget = RolloutTargetV1;

export interface RolloutState {
  rolloutId: string | null;
  status: RolloutStatus;
  targets: readonly RolloutTarget[];
  waves: readonly (readonly string[])[];
  /** Index of the last wave started, -1 before the canary. */
  wave: number;
  /** The wave of each target node: a report is checked in constant time, not by scanning the waves. */
  waveOf: ReadonlyMap<string, number>;
  maxRejections: number;
  /** Outcome per node that reported. */
  reports: ReadonlyMap<string, 'applied' | 'rejected'>;
  rejected: number;
}

export interface NodeReport {
  nodeId: string;
  outcome: 'applied' | 'rejected';
  error: string | null;
}

export type RolloutCommand =
  | { type: 'PlanRollout'; rolloutId: string; reason: string; targets: RolloutTarget[]; waves: string[][]; maxRejections: number; by: string; at: Date }
  /** Reports in one decision: what a wave of agents reporting at once becomes (producers/fleet/rollouts.ts). */
  | { type: 'ReportNodes'; rolloutId: string; reports: NodeReport[]; at: Date }
  | { type: 'Pause' | 'Resume' | 'Abort' | 'RollBack'; rolloutId: string; by: string; at: Date };

type E = DomainEvent<RolloutEventKey>;

const ACTIVE: ReadonlySet<RolloutStatus> = new Set(['running', 'paused']);

/** Nodes told their new template so far: every node of the waves started. */
export function announcedNodes(state: Pick<RolloutState, 'waves' | 'wave'>): string[] {
  return state.waves.slice(0, state.wave + 1).flat();
}

/** What follows once the current wave may have finished: the next wave, completion, or nothing yet. */
function advance(state: RolloutState, rolloutId: string, at: Date): E[] {
  if (state.status !== 'running') return [];
  const current = state.waves[state.wave] ?? [];
  if (!current.every((nodeId) => state.reports.has(nodeId))) return [];
  const next = state.wave + 1;
  if (next < state.waves.length) {
    return [{ type: 'fleet.RolloutWaveStarted', data: { rolloutId, wave: next, nodeIds: [...state.waves[next]!], startedAt: at } }];
  }
  const { rejected } = state;
  return [{ type: 'fleet.RolloutCompleted', data: { rolloutId, applied: state.reports.size - rejected, rejected, completedAt: at } }];
}

function plan(command: Extract<RolloutCommand, { type: 'PlanRollout' }>, state: RolloutState): E[] {
  const { rolloutId, reason, targets, waves, maxRejections, by, at } = command;
  if (state.rolloutId) throw new DomainError('rollout_exists', `rollout ${rolloutId} already exists`);
  if (targets.length === 0) throw new DomainError('nothing_to_roll_out', 'no node needs a new configuration');
  const inWaves = waves.flat();
  if (inWaves.length !== targets.length || new Set(inWaves).size !== inWaves.length || !targets.every((t) => inWaves.includes(t.nodeId))) {
    throw new DomainError('invalid_waves', 'waves: every target node must be in exactly one wave');
  }
  return [
    { type: 'fleet.RolloutPlanned', data: { rolloutId, reason, targets, waves, maxRejections, plannedBy: by, plannedAt: at } },
    { type: 'fleet.RolloutWaveStarted', data: { rolloutId, wave: 0, nodeIds: [...waves[0]!], startedAt: at } },
  ];
}

function report(rolloutId: string, r: NodeReport, at: Date, state: RolloutState): E[] {
  const { nodeId, outcome, error } = r;
  const wave = state.waveOf.get(nodeId);
  if (!ACTIVE.has(state.status) || state.reports.has(nodeId) || wave === undefined || wave > state.wave) return [];
  const reported: E = { type: 'fleet.RolloutNodeReported', data: { rolloutId, nodeId, outcome, error, reportedAt: at } };
  const after = evolve(state, reported);
  const canaryRejected = outcome === 'rejected' && state.wave === 0;
  if (canaryRejected || after.rejected > state.maxRejections) {
    const why = canaryRejected ? `canary ${nodeId} rejected the configuration: ${error ?? 'no reason given'}` : `${after.rejected} nodes rejected, more than the ${state.maxRejections} allowed`;
    return [reported, { type: 'fleet.RolloutHalted', data: { rolloutId, reason: why, haltedAt: at } }];
  }
  return [reported, ...advance(after, rolloutId, at)];
}

/** Reports one after another, each decided on the state the previous ones left. */
function reportAll(rolloutId: string, reports: readonly NodeReport[], at: Date, state: RolloutState): E[] {
  const events: E[] = [];
  let current = state;
  for (const r of reports) {
    const decided = report(rolloutId, r, at, current);
    for (const event of decided) current = evolve(current, event);
    events.push(...decided);
  }
  return events;
}

function operate(command: Extract<RolloutCommand, { type: 'Pause' | 'Resume' | 'Abort' | 'RollBack' }>, state: RolloutState): E[] {
  const { rolloutId, by, at } = command;
  const refuse = () => new DomainError('invalid_rollout_state', `rollout ${rolloutId} is ${state.status}: cannot ${command.type.toLowerCase()}`, { status: state.status });
  switch (command.type) {
    case 'Pause':
      if (state.status === 'paused') return [];
      if (state.status !== 'running') throw refuse();
      return [{ type: 'fleet.RolloutPaused', data: { rolloutId, by, pausedAt: at } }];
    case 'Resume': {
      if (state.status === 'running') return [];
      if (state.status !== 'paused') throw refuse();
      const resumed: E = { type: 'fleet.RolloutResumed', data: { rolloutId, by, resumedAt: at } };
      return [resumed, ...advance(evolve(state, resumed), rolloutId, at)];
    }
    case 'Abort':
      if (state.status === 'aborted') return [];
      if (!ACTIVE.has(state.status)) throw refuse();
      return [{ type: 'fleet.RolloutAborted', data: { rolloutId, by, abortedAt: at } }];
    case 'RollBack':
      if (state.status === 'rolled_back') return [];
      return [{ type: 'fleet.RolloutRolledBack', data: { rolloutId, by, nodeIds: announcedNodes(state), rolledBackAt: at } }];
  }
}

function decide(command: RolloutCommand, state: RolloutState): E[] {
  if (command.type === 'PlanRollout') return plan(command, state);
  if (!state.rolloutId) throw new DomainError('rollout_not_found', `no rollout ${command.rolloutId}`);
  if (command.type === 'ReportNodes') return reportAll(command.rolloutId, command.reports, command.at, state);
  return operate(command, state);
}

function evolve(state: RolloutState, event: E): RolloutState {
  switch (event.type) {
    case 'fleet.RolloutPlanned': {
      const d = event.data;
      // A fresh map: the initial state's must stay empty.
      const waveOf = new Map<string, number>();
      d.waves.forEach((nodes, wave) => nodes.forEach((nodeId) => waveOf.set(nodeId, wave)));
      return { ...state, rolloutId: d.rolloutId, status: 'running', targets: d.targets, waves: d.waves, waveOf, maxRejections: d.maxRejections };
    }
    case 'fleet.RolloutWaveStarted':
      return { ...state, wave: event.data.wave };
    case 'fleet.RolloutNodeReported':
      // Copied, not changed in place: decide() evolves speculatively, and a cached state must not remember a report whose append failed.
      return { ...state, reports: new Map(state.reports).set(event.data.nodeId, event.data.outcome as 'applied' | 'rejected'), rejected: state.rejected + (event.data.outcome === 'rejected' ? 1 : 0) };
    case 'fleet.RolloutPaused':
      return { ...state, status: 'paused' };
    case 'fleet.RolloutResumed':
      return { ...state, status: 'running' };
    case 'fleet.RolloutAborted':
      return { ...state, status: 'aborted' };
    case 'fleet.RolloutHalted':
      return { ...state, status: 'halted' };
    case 'fleet.RolloutCompleted':
      return { ...state, status: 'completed' };
    case 'fleet.RolloutRolledBack':
      return { ...state, status: 'rolled_back' };
  }
}

export const rolloutDecider: Decider<RolloutState, RolloutCommand, RolloutEventKey> = {
  initialState: { rolloutId: null, status: 'none', targets: [], waves: [], wave: -1, waveOf: new Map(), maxRejections: 0, reports: new Map(), rejected: 0 },
  decide,
  evolve,
};

/**
 * Waves for a set of nodes: one canary, then `share` of the rest (at least one
 * node), then everyone else. Order is the caller's (it sorts by name).
 */
export function planWaves(nodeIds: readonly string[], share = 0.1): string[][] {
  if (nodeIds.length === 0) return [];
  const [canary, ...rest] = nodeIds;
  const waves: string[][] = [[canary!]];
  if (rest.length === 0) return waves;
  const second = Math.max(1, Math.ceil(rest.length * share));
  waves.push(rest.slice(0, second));
  if (rest.length > second) waves.push(rest.slice(second));
  return waves;
}
