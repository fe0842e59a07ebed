/**
 * The fleet's read models, from one pass over `<ns>.evt.fleet.>` (one
 * projection, because a rollout wave changes what its nodes should run and
 * both must move in the same transaction):
 * - `fleet_nodes`: description, health, drain, enrollment, desired and applied template;
 * - `fleet_profiles`: profiles with their public settings (never their secrets);
 * - `fleet_rollouts` and `fleet_rollout_nodes`: each rollout and every node's report.
 */
import type { StoredEvent } from '../../contracts/envelope.js';
import type { Transaction } from 'kysely';
import type { Database, FleetNodeTable, FleetProfileTable, FleetRolloutNodeTable, FleetRolloutTable } from '../../schema/database.js';
import type { Projection } from '../runtime/projection.js';
import { tokenArrayColumn, updateUnnest, upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';
import { foldRows, storedById, type RowStep } from '../runtime/batch-fold.js';

type NodeRow = FleetNodeTable;
type ProfileRow = Omit<FleetProfileTable, 'settings'> & { settings: string };
type RolloutRow = Omit<FleetRolloutTable, 'waves' | 'targets'> & { waves: string[][]; targets: { nodeId: string; template: string; previousTemplate: string | null }[] };

const text = <Row>(name: keyof Row & string): UnnestColumn<Row> => ({ name, arrayType: 'text[]', value: (r) => r[name] });
const of = <Row>(name: keyof Row & string, arrayType: string): UnnestColumn<Row> => ({ name, arrayType, value: (r) => r[name] });

const NODE_COLUMNS: UnnestColumn<NodeRow>[] = [
  ...(['id', 'address', 'region', 'country', 'city'] as const).map((c) => text<NodeRow>(c)),
  tokenArrayColumn<NodeRow>('labels', (r) => r.labels),
  tokenArrayColumn<NodeRow>('roles', (r) => r.roles),
  ...(['health', 'health_reason', 'nats_user', 'nats_password_hash', 'desired_template', 'desired_rollout', 'applied_template', 'applied_version', 'last_error'] as const).map((c) => text<NodeRow>(c)),
  of<NodeRow>('drained', 'boolean[]'),
  of<NodeRow>('retired', 'boolean[]'),
  of<NodeRow>('applied_at', 'timestamptz[]'),
  of<NodeRow>('registered_at', 'timestamptz[]'),
  of<NodeRow>('last_seq', 'bigint[]'),
];

const PROFILE_COLUMNS: UnnestColumn<ProfileRow>[] = [
  text<ProfileRow>('id'),
  text<ProfileRow>('kind'),
  of<ProfileRow>('port', 'integer[]'),
  tokenArrayColumn<ProfileRow>('labels', (r) => r.labels),
  { name: 'settings', arrayType: 'text[]', cast: 'jsonb', value: (r) => r.settings },
  of<ProfileRow>('removed', 'boolean[]'),
  of<ProfileRow>('created_at', 'timestamptz[]'),
  of<ProfileRow>('last_seq', 'bigint[]'),
];

const ROLLOUT_COLUMNS: UnnestColumn<RolloutRow>[] = [
  ...(['id', 'status', 'reason', 'planned_by', 'status_reason'] as const).map((c) => text<RolloutRow>(c)),
  of<RolloutRow>('planned_at', 'timestamptz[]'),
  ...(['wave', 'max_rejections', 'applied', 'rejected'] as const).map((c) => of<RolloutRow>(c, 'integer[]')),
  { name: 'waves', arrayType: 'text[]', cast: 'jsonb', value: (r) => JSON.stringify(r.waves) },
  { name: 'targets', arrayType: 'text[]', cast: 'jsonb', value: (r) => JSON.stringify(r.targets) },
  of<RolloutRow>('updated_at', 'timestamptz[]'),
  of<RolloutRow>('last_seq', 'bigint[]'),
];

const PLAN_COLUMNS = new Set(['waves', 'targets']);
const PROGRESS_COLUMNS = ROLLOUT_COLUMNS.filter((c) => !PLAN_COLUMNS.has(c.name));

const REPORT_COLUMNS: UnnestColumn<FleetRolloutNodeTable>[] = [
  text<FleetRolloutNodeTable>('rollout_id'),
  text<FleetRolloutNodeTable>('node_id'),
  text<FleetRolloutNodeTable>('outcome'),
  text<FleetRolloutNodeTable>('error'),
  of<FleetRolloutNodeTable>('reported_at', 'timestamptz[]'),
];

function rolloutStep(event: StoredEvent, reports: Map<string, FleetRolloutNodeTable>): RowStep<RolloutRow> {
  const change = (id: string, update: (row: RolloutRow) => Partial<RolloutRow>, at: Date): RowStep<RolloutRow> => ({
    id,
    update: (row) => ({ ...row, ...update(row), updated_at: at, last_seq: event.seq }),
  });
  switch (event.type) {
    case 'fleet.RolloutPlanned': {
      const d = event.data;
      const row: RolloutRow = {
        id: d.rolloutId, status: 'running', reason: d.reason, planned_by: d.plannedBy, planned_at: d.plannedAt, wave: -1, waves: d.waves, targets: d.targets,
        max_rejections: d.maxRejections, applied: 0, rejected: 0, status_reason: null, updated_at: d.plannedAt, last_seq: event.seq,
      };
      return { id: d.rolloutId, create: row };
    }
    case 'fleet.RolloutWaveStarted':
      return change(event.data.rolloutId, () => ({ wave: event.data.wave }), event.data.startedAt);
    case 'fleet.RolloutNodeReported': {
      const d = event.data;
      reports.set(`${d.rolloutId}\n${d.nodeId}`, { rollout_id: d.rolloutId, node_id: d.nodeId, outcome: d.outcome, error: d.error, reported_at: d.reportedAt });
      return change(d.rolloutId, (r) => (d.outcome === 'applied' ? { applied: r.applied + 1 } : { rejected: r.rejected + 1 }), d.reportedAt);
    }
    case 'fleet.RolloutPaused':
      return change(event.data.rolloutId, () => ({ status: 'paused', status_reason: `paused by ${event.data.by}` }), event.data.pausedAt);
    case 'fleet.RolloutResumed':
      return change(event.data.rolloutId, () => ({ status: 'running', status_reason: null }), event.data.resumedAt);
    case 'fleet.RolloutAborted':
      return change(event.data.rolloutId, () => ({ status: 'aborted', status_reason: `aborted by ${event.data.by}` }), event.data.abortedAt);
    case 'fleet.RolloutHalted':
      return change(event.data.rolloutId, () => ({ status: 'halted', status_reason: event.data.reason }), event.data.haltedAt);
    case 'fleet.RolloutCompleted':
      return change(event.data.rolloutId, () => ({ status: 'completed' }), event.data.completedAt);
    case 'fleet.RolloutRolledBack':
      return change(event.data.rolloutId, () => ({ status: 'rolled_back', status_reason: `rolled back by ${event.data.by}` }), event.data.rolledBackAt);
    default:
      return undefined;
  }
}

type TargetsByRollout = ReadonlyMap<string, ReadonlyMap<string, RolloutRow['targets'][number]>>;

/** The targets of every rollout whose waves or roll-back the batch holds: from the batch's own plans, else from the table. */
async function rolloutTargets(trx: Transaction<Database>, events: readonly StoredEvent[], plannedHere: readonly RolloutRow[]): Promise<TargetsByRollout> {
  const byNode = (list: RolloutRow['targets']) => new Map(list.map((t) => [t.nodeId, t]));
  const targets = new Map(plannedHere.map((r) => [r.id, byNode(r.targets)]));
  const needed = new Set(events.flatMap((e) => (e.type === 'fleet.RolloutWaveStarted' || e.type === 'fleet.RolloutRolledBack' ? [e.data.rolloutId] : [])));
  const missing = [...needed].filter((id) => !targets.has(id));
  if (missing.length > 0) {
    for (const row of await trx.selectFrom('fleet_rollouts').select(['id', 'targets']).where('id', 'in', missing).execute()) targets.set(row.id, byNode(row.targets));
  }
  return targets;
}

/** Node rows, including what rollout waves and roll-backs tell nodes to run. */
function nodeStep(event: StoredEvent, targets: TargetsByRollout): RowStep<NodeRow> | RowStep<NodeRow>[] {
  const change = (id: string, update: (row: NodeRow) => Partial<NodeRow>): RowStep<NodeRow> => ({ id, update: (row) => ({ ...row, ...update(row), last_seq: event.seq }) });
  const templateOf = (rolloutId: string, nodeId: string) => targets.get(rolloutId)?.get(nodeId);
  switch (event.type) {
    case 'fleet.NodeRegistered': {
      const d = event.data;
      const row: NodeRow = {
        id: d.nodeId, address: d.address, region: d.region, country: d.country, city: d.city, labels: d.labels, roles: d.roles,
        health: 'unknown', health_reason: null, drained: false, retired: false, nats_user: null, nats_password_hash: null,
        desired_template: null, desired_rollout: null, applied_template: null, applied_version: null, applied_at: null, last_error: null,
        registered_at: d.registeredAt, last_seq: event.seq,
      };
      return { id: d.nodeId, create: row };
    }
    case 'fleet.NodeUpdated': {
      const { address, region, country, city, labels, roles } = event.data;
      return change(event.data.nodeId, () => ({ address, region, country, city, labels, roles }));
    }
    case 'fleet.NodeEnrolled':
      return change(event.data.nodeId, () => ({ nats_user: event.data.natsUser, nats_password_hash: event.data.natsPasswordHash }));
    case 'fleet.NodeHealthChanged':
      return change(event.data.nodeId, () => ({ health: event.data.health, health_reason: event.data.reason }));
    case 'fleet.NodeDrained':
    case 'fleet.NodeUndrained':
      return change(event.data.nodeId, () => ({ drained: event.type === 'fleet.NodeDrained' }));
    case 'fleet.NodeRetired':
      return change(event.data.nodeId, () => ({ retired: true, nats_password_hash: null }));
    case 'fleet.NodeConfigApplied': {
      const d = event.data;
      return change(d.nodeId, () => ({ applied_template: d.template, applied_version: d.version, applied_at: d.appliedAt, last_error: null }));
    }
    case 'fleet.NodeConfigRejected':
      return change(event.data.nodeId, () => ({ last_error: event.data.error }));
    case 'fleet.RolloutWaveStarted': {
      const { rolloutId } = event.data;
      return event.data.nodeIds.map((nodeId) => change(nodeId, () => ({ desired_template: templateOf(rolloutId, nodeId)?.template ?? null, desired_rollout: rolloutId })));
    }
    case 'fleet.RolloutRolledBack': {
      const { rolloutId } = event.data;
      return event.data.nodeIds.map((nodeId) => change(nodeId, () => ({ desired_template: templateOf(rolloutId, nodeId)?.previousTemplate ?? null, desired_rollout: null })));
    }
    default:
      return undefined;
  }
}

function profileStep(event: StoredEvent): RowStep<ProfileRow> {
  switch (event.type) {
    case 'fleet.ProfileCreated': {
      const d = event.data;
      return { id: d.profileId, create: { id: d.profileId, kind: d.kind, port: d.port, labels: d.labels, settings: d.settingsJson, removed: false, created_at: d.createdAt, last_seq: event.seq } };
    }
    case 'fleet.ProfileUpdated': {
      const d = event.data;
      return { id: d.profileId, update: (row) => ({ ...row, port: d.port, labels: d.labels, settings: d.settingsJson, last_seq: event.seq }) };
    }
    case 'fleet.ProfileRemoved':
      return { id: event.data.profileId, update: (row) => ({ ...row, removed: true, last_seq: event.seq }) };
    default:
      return undefined;
  }
}

export const fleetProjection: Projection = {
  name: 'fleet',
  context: 'fleet',
  tables: ['fleet_nodes', 'fleet_profiles', 'fleet_rollouts', 'fleet_rollout_nodes'],
  filter: (names) => names.contextSubjects('fleet'),
  async apply(trx, events) {
    const reports = new Map<string, FleetRolloutNodeTable>();
    // A rollout's plan (waves, targets: hundreds of KB for a large fleet) is written once, with RolloutPlanned;
    // later events read and write only its progress.
    const rollouts = await foldRows(events, (e) => rolloutStep(e, reports), async (ids) => {
      const rows = await trx.selectFrom('fleet_rollouts').select(PROGRESS_COLUMNS.map((c) => c.name) as never[]).where('id', 'in', ids).execute();
      return (rows as unknown as RolloutRow[]).map((row) => [row.id, { ...row, waves: [], targets: [] }]);
    });
    const planned = new Set(events.flatMap((e) => (e.type === 'fleet.RolloutPlanned' ? [e.data.rolloutId] : [])));
    const targets = await rolloutTargets(trx, events, rollouts.filter((r) => planned.has(r.id)));
    const nodes = await foldRows(events, (e) => nodeStep(e, targets), storedById<NodeRow>(trx, 'fleet_nodes'));
    const profiles = await foldRows(events, profileStep, async (ids) => {
      const rows = await trx.selectFrom('fleet_profiles').selectAll().where('id', 'in', ids).execute();
      return rows.map((row) => [row.id, { ...row, settings: JSON.stringify(row.settings) }]);
    });
    await upsertUnnest(trx, 'fleet_rollouts', ROLLOUT_COLUMNS, rollouts.filter((r) => planned.has(r.id)), ['id']);
    await updateUnnest(trx, 'fleet_rollouts', PROGRESS_COLUMNS, rollouts.filter((r) => !planned.has(r.id)), ['id']);
    await upsertUnnest(trx, 'fleet_rollout_nodes', REPORT_COLUMNS, [...reports.values()], ['rollout_id', 'node_id']);
    await upsertUnnest(trx, 'fleet_nodes', NODE_COLUMNS, nodes, ['id']);
    await upsertUnnest(trx, 'fleet_profiles', PROFILE_COLUMNS, profiles, ['id']);
  },
};
