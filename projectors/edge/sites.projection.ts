/**
 * `edge_sites`: every site with its owner, names, node labels and settings,
 * its block state and version (the stream sequence of its last event), as the
 * sites API lists them and edge nodes' desired state is read from
 * (producers/edge/sites.ts). Deleted sites keep their row, marked, so a
 * rebuild gives the same table.
 */
import type { Selectable } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { CachePurge } from '../../producers/edge/model.js';
import { settingsOf } from '../../producers/edge/site-settings.js';
import type { EdgeSiteTable } from '../../schema/database.js';
import { foldRows, storedById, type RowStep } from '../runtime/batch-fold.js';
import type { Projection } from '../runtime/projection.js';
import { tokenArrayColumn, upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';

type SiteRow = Selectable<EdgeSiteTable>;

const COLUMNS: UnnestColumn<SiteRow>[] = [
  ...(['id', 'owner_id', 'domain'] as const).map((name) => ({ name, arrayType: 'text[]', value: (r: SiteRow) => r[name] })),
  // Hostnames and labels are tokens (no commas, quotes, braces or spaces): site-validation.ts.
  tokenArrayColumn<SiteRow>('aliases', (r) => r.aliases),
  tokenArrayColumn<SiteRow>('node_labels', (r) => r.node_labels),
  { name: 'settings', arrayType: 'text[]', cast: 'json', value: (r) => JSON.stringify(r.settings) },
  { name: 'blocked', arrayType: 'boolean[]', value: (r) => r.blocked },
  { name: 'cache_purge', arrayType: 'text[]', cast: 'json', value: (r) => JSON.stringify(r.cache_purge) },
  ...(['created_at', 'updated_at', 'deleted_at'] as const).map((name) => ({ name, arrayType: 'timestamptz[]', value: (r: SiteRow) => r[name] })),
  { name: 'last_seq', arrayType: 'bigint[]', value: (r) => r.last_seq },
];

/** URIs purged since the last whole-site purge that a site keeps as versions of their own; past it, a purge of paths purges the whole site. */
export const MAX_PURGED_PATHS = 256;

/**
 * A purge at stream sequence `seq` as the site's next cache-key versions: the
 * whole site (no paths) starts a new generation and forgets purged paths;
 * paths get `seq` each (a path purged again moves to its new version).
 */
export function purged(before: CachePurge, paths: readonly string[], seq: number): CachePurge {
  if (paths.length === 0) return { generation: seq, paths: [] };
  const again = new Set(paths);
  const kept = before.paths.filter((p) => !again.has(p.path));
  if (kept.length + paths.length > MAX_PURGED_PATHS) return { generation: seq, paths: [] };
  return { generation: before.generation, paths: [...kept, ...paths.map((path) => ({ path, generation: seq }))] };
}

function step(event: StoredEvent): RowStep<SiteRow> {
  const seq = event.seq;
  switch (event.type) {
    case 'edge.SiteCreated': {
      const d = event.data;
      const settings = settingsOf(d);
      const create: SiteRow = {
        id: d.siteId,
        owner_id: d.ownerId,
        domain: settings.domain,
        aliases: settings.aliases,
        node_labels: settings.nodeLabels,
        settings,
        blocked: false,
        cache_purge: { generation: 0, paths: [] },
        created_at: d.createdAt,
        updated_at: d.createdAt,
        deleted_at: null,
        last_seq: seq,
      };
      return { id: d.siteId, create };
    }
    case 'edge.SiteUpdated': {
      const settings = settingsOf(event.data);
      const at = event.data.updatedAt;
      return { id: event.data.siteId, update: (r) => ({ ...r, domain: settings.domain, aliases: settings.aliases, node_labels: settings.nodeLabels, settings, updated_at: at, last_seq: seq }) };
    }
    case 'edge.SiteBlocked': {
      const at = event.data.blockedAt;
      return { id: event.data.siteId, update: (r) => ({ ...r, blocked: true, updated_at: at, last_seq: seq }) };
    }
    case 'edge.SiteUnblocked': {
      const at = event.data.unblockedAt;
      return { id: event.data.siteId, update: (r) => ({ ...r, blocked: false, updated_at: at, last_seq: seq }) };
    }
    case 'edge.SiteCachePurged': {
      const paths = event.data.paths;
      return { id: event.data.siteId, update: (r) => ({ ...r, cache_purge: purged(r.cache_purge, paths, seq), last_seq: seq }) };
    }
    case 'edge.SiteDeleted': {
      const at = event.data.deletedAt;
      return { id: event.data.siteId, update: (r) => ({ ...r, deleted_at: at, updated_at: at, last_seq: seq }) };
    }
    default:
      return undefined;
  }
}

export const EDGE_SITES_PROJECTOR = 'edge-sites';

export const edgeSitesProjection: Projection = {
  name: EDGE_SITES_PROJECTOR,
  context: 'edge',
  tables: ['edge_sites'],
  filter: (names) => names.aggregateSubjects('edge', 'site'),
  async apply(trx, events) {
    const rows = await foldRows(events, step, storedById<SiteRow>(trx, 'edge_sites'));
    await upsertUnnest(trx, 'edge_sites', COLUMNS, rows, ['id']);
  },
};
