/**
 * The fleet's side of edge nodes (docs/edge.md#adding-an-edge-node): what an
 * edge node's agent asks for (`edge-desired`: the sites its labels select)
 * and reports (`edge-report`: each site applied or rejected, recorded in
 * `edge_site_deployments`), and the push that tells every edge node to ask
 * again when the `edge-sites` read model moves. The node id always comes from
 * the subject (AgentEndpoints), never from a body.
 */
import type { Logger } from '../../infra/logger.js';
import { DomainError } from '../../producers/decider.js';
import { edgeDesired } from '../../producers/edge/edge-desired.js';
import type { SiteOutcome } from '../../producers/edge/model.js';
import type { Sites } from '../../producers/edge/sites.js';
import type { FleetDeps } from '../../producers/fleet/fleet-deps.js';
import { EDGE_SITES_PROJECTOR } from '../../projectors/edge/sites.projection.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import type { EdgeDesiredReply, EdgeReportRequest } from './agent-protocol.js';

/** The fleet role that makes a node an edge node. */
export const EDGE_ROLE = 'edge';

/** nginx's messages are a line or two; a runaway one is cut rather than stored whole. */
const MAX_ERROR_CHARS = 4_000;
/** Batches of the read model that land together are one push. */
const PUSH_DEBOUNCE_MS = 50;

const invalid = (message: string) => new DomainError('invalid_report', message);

function parseOutcome(raw: unknown): SiteOutcome {
  const o = (raw ?? {}) as Record<string, unknown>;
  if (typeof o['siteId'] !== 'string' || !Number.isSafeInteger(o['version'])) throw invalid('an outcome needs siteId and an integer version');
  const version = o['version'] as number;
  if (o['status'] === 'applied') return { siteId: o['siteId'], version, status: 'applied' };
  if (o['status'] !== 'rejected' || typeof o['error'] !== 'string') throw invalid('status must be applied, or rejected with an error');
  const serving = o['servingVersion'];
  if (serving !== null && !Number.isSafeInteger(serving)) throw invalid('servingVersion must be an integer or null');
  return { siteId: o['siteId'], version, status: 'rejected', error: o['error'].slice(0, MAX_ERROR_CHARS), servingVersion: serving as number | null };
}

export class EdgeEndpoints {
  private unsubscribe: (() => void) | null = null;
  private pushTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly d: FleetDeps,
    private readonly sites: Pick<Sites, 'desiredFor'>,
    private readonly watcher: Pick<CheckpointWatcher, 'onMove'>,
    private readonly log: Logger,
  ) {}

  /** Pushes every edge node whenever the sites' read model commits (the agents' periodic sync covers a lost push). */
  async start(): Promise<void> {
    this.unsubscribe = await this.watcher.onMove([EDGE_SITES_PROJECTOR], () => this.schedulePush());
  }

  stop(): void {
    this.unsubscribe?.();
    if (this.pushTimer) clearTimeout(this.pushTimer);
  }

  private schedulePush(): void {
    if (this.pushTimer) return;
    this.pushTimer = setTimeout(() => {
      this.pushTimer = null;
      void this.pushEdgeNodes().catch((err: unknown) => this.log.warn({ err }, 'pushing edge nodes failed'));
    }, PUSH_DEBOUNCE_MS);
  }

  /** Every live edge node, not only those the change concerns: a site whose labels changed leaves some nodes and reaches others. */
  private async pushEdgeNodes(): Promise<void> {
    const nodes = await this.edgeNodes().select('id').execute();
    for (const { id } of nodes) this.d.push(id, { type: 'edge' });
  }

  private edgeNodes() {
    return this.d.db.selectFrom('fleet_nodes').where('retired', '=', false).where((eb) => eb(eb.val(EDGE_ROLE), '=', eb.fn.any('roles')));
  }

  /** The node's labels when it is a live edge node; null for any other node (it serves no sites). */
  private async edgeLabels(nodeId: string): Promise<string[] | null> {
    const row = await this.edgeNodes().select('labels').where('id', '=', nodeId).executeTakeFirst();
    return row ? row.labels : null;
  }

  async desired(nodeId: string): Promise<EdgeDesiredReply> {
    const labels = await this.edgeLabels(nodeId);
    return edgeDesired(labels ? await this.sites.desiredFor(labels) : []);
  }

  /**
   * Records the node's outcome per site: applied at its version, or rejected
   * with the edge's error and the version it still serves. Only sites the
   * node is meant to serve now are recorded, and the node's rows of sites it
   * no longer serves are removed.
   */
  async report(nodeId: string, body: EdgeReportRequest, now = new Date()): Promise<void> {
    if (!Array.isArray(body.outcomes)) throw invalid('outcomes must be an array');
    const outcomes = body.outcomes.map(parseOutcome);
    const labels = await this.edgeLabels(nodeId);
    const served = new Set(labels ? (await this.sites.desiredFor(labels)).map((site) => site.siteId) : []);
    const rows = outcomes
      .filter((o) => served.has(o.siteId))
      .map((o) => ({
        site_id: o.siteId,
        node_id: nodeId,
        applied_version: o.status === 'applied' ? o.version : o.servingVersion,
        status: o.status,
        error: o.status === 'rejected' ? o.error : null,
        updated_at: now,
      }));
    await this.d.db.transaction().execute(async (trx) => {
      let gone = trx.deleteFrom('edge_site_deployments').where('node_id', '=', nodeId);
      if (served.size > 0) gone = gone.where('site_id', 'not in', [...served]);
      await gone.execute();
      if (rows.length === 0) return;
      await trx
        .insertInto('edge_site_deployments')
        .values(rows)
        .onConflict((oc) => oc.columns(['site_id', 'node_id']).doUpdateSet((eb) => ({ applied_version: eb.ref('excluded.applied_version'), status: eb.ref('excluded.status'), error: eb.ref('excluded.error'), updated_at: eb.ref('excluded.updated_at') })))
        .execute();
    });
  }
}
