/** Operator views of the fleet read models, shared by the HTTP API and the ops micro service. */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Database, FleetNodeTable } from '../../schema/database.js';
import { DomainError } from '../decider.js';
import type { NodeDescription } from './model.js';

export interface NodeView extends NodeDescription {
  health: string;
  healthReason: string | null;
  drained: boolean;
  retired: boolean;
  enrolled: boolean;
  desiredTemplate: string | null;
  appliedTemplate: string | null;
  appliedVersion: string | null;
  appliedAt: string | null;
  lastError: string | null;
  sequence: number;
}

function nodeView(row: Selectable<FleetNodeTable>): NodeView {
  return {
    nodeId: row.id,
    address: row.address,
    region: row.region,
    country: row.country,
    city: row.city,
    labels: row.labels,
    roles: row.roles,
    health: row.health,
    healthReason: row.health_reason,
    drained: row.drained,
    retired: row.retired,
    enrolled: row.nats_user !== null,
    desiredTemplate: row.desired_template,
    appliedTemplate: row.applied_template,
    appliedVersion: row.applied_version,
    appliedAt: row.applied_at?.toISOString() ?? null,
    lastError: row.last_error,
    sequence: row.last_seq,
  };
}

export class FleetViews {
  constructor(private readonly db: Kysely<Database>) {}

  async nodes(): Promise<NodeView[]> {
    return (await this.db.selectFrom('fleet_nodes').selectAll().orderBy('id').execute()).map(nodeView);
  }

  async node(nodeId: string): Promise<NodeView> {
    const row = await this.db.selectFrom('fleet_nodes').selectAll().where('id', '=', nodeId).executeTakeFirst();
    if (!row) throw new DomainError('node_not_found', `no node ${nodeId}`);
    return nodeView(row);
  }

  async rollouts(limit = 50) {
    // Counts only: a plan's waves and targets run to hundreds of KB for a large fleet.
    const rows = await this.db
      .selectFrom('fleet_rollouts')
      .select(['id', 'status', 'reason', 'planned_by', 'planned_at', 'wave', 'applied', 'rejected', 'status_reason'])
      .select([sql<number>`jsonb_array_length(waves)`.as('waves'), sql<number>`jsonb_array_length(targets)`.as('nodes')])
      .orderBy('planned_at', 'desc')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ rolloutId: r.id, status: r.status, reason: r.reason, plannedBy: r.planned_by, plannedAt: r.planned_at.toISOString(), wave: r.wave, waves: r.waves, nodes: r.nodes, applied: r.applied, rejected: r.rejected, statusReason: r.status_reason }));
  }

  async rollout(rolloutId: string) {
    const row = await this.db.selectFrom('fleet_rollouts').selectAll().where('id', '=', rolloutId).executeTakeFirst();
    if (!row) throw new DomainError('rollout_not_found', `no rollout ${rolloutId}`);
    const reports = await this.db.selectFrom('fleet_rollout_nodes').selectAll().where('rollout_id', '=', rolloutId).orderBy('reported_at').execute();
    return {
      rolloutId: row.id,
      status: row.status,
      reason: row.reason,
      statusReason: row.status_reason,
      plannedBy: row.planned_by,
      plannedAt: row.planned_at.toISOString(),
      wave: row.wave,
      waves: row.waves,
      targets: row.targets,
      maxRejections: row.max_rejections,
      applied: row.applied,
      rejected: row.rejected,
      reports: reports.map((r) => ({ nodeId: r.node_id, outcome: r.outcome, error: r.error, reportedAt: r.reported_at.toISOString() })),
      sequence: row.last_seq,
    };
  }
}
