/**
 * Which fleet nodes are edge nodes, and which of them serve a site: the one
 * rule that the fleet's edge endpoints (what a node is asked to serve) and
 * the ACME leader (which nodes must answer a site's HTTP-01 token) share.
 * A live edge node is a fleet node with the `edge` role that is not retired;
 * it serves the sites whose `nodeLabels` meet its labels, or are empty.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';

/** The fleet role that makes a node an edge node. */
export const EDGE_ROLE = 'edge';

export function liveEdgeNodes(db: Kysely<Database>) {
  return db.selectFrom('fleet_nodes').where('retired', '=', false).where((eb) => eb(eb.val(EDGE_ROLE), '=', eb.fn.any('roles')));
}

/** The live edge nodes that serve `siteId` (none for a deleted or unknown site), by id. */
export async function nodesServing(db: Kysely<Database>, siteId: string): Promise<string[]> {
  const rows = await liveEdgeNodes(db)
    .innerJoin('edge_sites', (join) => join.on('edge_sites.id', '=', siteId))
    .where('edge_sites.deleted_at', 'is', null)
    .where(sql<boolean>`(cardinality(edge_sites.node_labels) = 0 or edge_sites.node_labels && fleet_nodes.labels)`)
    .select('fleet_nodes.id')
    .orderBy('fleet_nodes.id')
    .execute();
  return rows.map((r) => r.id);
}
