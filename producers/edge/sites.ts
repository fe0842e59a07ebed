/**
 * Edge sites (docs/edge.md#sites): clients create, change, block, unblock and
 * delete their own sites; admins and operators any. A site's names are
 * reserved before it records them (site-names.ts), so of two concurrent
 * creates of one name exactly one succeeds. Changes decide from the log
 * (ownership included: site.decider.ts); views and lists read `edge_sites`,
 * and so does desiredFor, what an edge node is asked to serve.
 */
import type { Selectable } from 'kysely';
import { sql } from 'kysely';
import { uuidv7 } from '../../contracts/ids.js';
import type { EdgeSiteTable } from '../../schema/database.js';
import type { ContextDeps } from '../context-deps.js';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import type { SiteSpec } from './model.js';
import { mayManage, siteDecider, type Requester, type SiteCommand } from './site.decider.js';
import { nameClaims, SiteNames, type EdgeAggregate } from './site-names.js';
import { siteNames, type SiteSettings } from './site-settings.js';
import { validatePurge, validateSite } from './site-validation.js';

export type { Requester } from './site.decider.js';

export type SiteView = SiteSettings & {
  id: string;
  ownerId: string;
  blocked: boolean;
  /** SiteSpec.version: what a node reports as applied. */
  version: number;
  createdAt: string;
  updatedAt: string;
};

export interface SiteDeploymentView {
  nodeId: string;
  /** The version the node serves; null when it never applied one. */
  appliedVersion: number | null;
  status: string;
  /** The edge's own error text for a rejected version. */
  error: string | null;
  updatedAt: string;
}

type SiteRow = Selectable<EdgeSiteTable>;

const notFound = () => new DomainError('site_not_found', 'no such site');

function siteView(r: SiteRow): SiteView {
  return { id: r.id, ownerId: r.owner_id, ...r.settings, blocked: r.blocked, version: r.last_seq, createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString() };
}

/** What a node renders: the settings without the labels that chose the node. */
function specOf(r: SiteRow): SiteSpec {
  const { nodeLabels: _labels, ...settings } = r.settings;
  return { siteId: r.id, version: r.last_seq, ...settings, blocked: r.blocked, cachePurge: r.cache_purge };
}

export class Sites {
  readonly names: SiteNames;

  constructor(readonly deps: ContextDeps<EdgeAggregate>) {
    this.names = new SiteNames(deps);
  }

  private decide(siteId: string, command: SiteCommand, actor: Actor) {
    return this.deps.decide(siteDecider, 'site', siteId, command, actor);
  }

  private acting(requester: Requester, actor: Actor, at: Date) {
    return { requester, by: actor.actor ?? 'unknown', at };
  }

  async create(input: unknown, requester: Requester, actor: Actor, now = new Date()): Promise<{ seq: number; id: string }> {
    const settings = validateSite(input);
    const id = uuidv7(now.getTime());
    await this.names.reserve(id, nameClaims(settings), actor, now);
    try {
      const { seq } = await this.deps.decide(siteDecider, 'site', id, { type: 'Create', siteId: id, settings, ...this.acting(requester, actor, now) }, actor, { assumeNew: true });
      return { seq, id };
    } catch (err) {
      await this.names.release(id, siteNames(settings), actor, now);
      throw err;
    }
  }

  /** Replaces the settings whole: names it newly uses are claimed first, names it no longer uses released after. */
  async update(id: string, input: unknown, requester: Requester, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    const { state } = await this.deps.load(siteDecider, 'site', id);
    // Before validation and reservation: another's site id tells a client nothing, not even whether its input was good.
    if (!mayManage(state, requester)) throw notFound();
    const settings = validateSite(input);
    const before = new Set(siteNames(state.settings!));
    const added = nameClaims(settings).filter((c) => !before.has(c.name));
    await this.names.reserve(id, added, actor, now);
    let result;
    try {
      result = await this.decide(id, { type: 'Update', settings, ...this.acting(requester, actor, now) }, actor);
    } catch (err) {
      await this.names.release(id, added.map((c) => c.name), actor, now);
      throw err;
    }
    const kept = new Set(siteNames(result.state.settings!));
    await this.names.release(id, [...before].filter((name) => !kept.has(name)), actor, now);
    return { seq: result.seq };
  }

  async block(id: string, requester: Requester, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    return { seq: (await this.decide(id, { type: 'Block', ...this.acting(requester, actor, now) }, actor)).seq };
  }

  async unblock(id: string, requester: Requester, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    return { seq: (await this.decide(id, { type: 'Unblock', ...this.acting(requester, actor, now) }, actor)).seq };
  }

  /** Empties the site's cache on every node serving it (these exact URIs, or all); nodes apply it with the site's next version. */
  async purge(id: string, input: unknown, requester: Requester, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    const { state } = await this.deps.load(siteDecider, 'site', id);
    // Before validation: another's site id tells a client nothing, not even whether its input was good.
    if (!mayManage(state, requester)) throw notFound();
    const paths = validatePurge(input);
    return { seq: (await this.decide(id, { type: 'Purge', paths, ...this.acting(requester, actor, now) }, actor)).seq };
  }

  /** Deletes the site, then frees its names for any other site. */
  async delete(id: string, requester: Requester, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    const { seq, state } = await this.decide(id, { type: 'Delete', ...this.acting(requester, actor, now) }, actor);
    if (state.settings) await this.names.release(id, siteNames(state.settings), actor, now);
    return { seq };
  }

  private async row(id: string, requester: Requester): Promise<SiteRow> {
    const row = await this.deps.db.selectFrom('edge_sites').selectAll().where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
    if (!row || !(requester.all || row.owner_id === requester.userId)) throw notFound();
    return row;
  }

  async view(id: string, requester: Requester): Promise<SiteView> {
    return siteView(await this.row(id, requester));
  }

  /** The requester's sites (every site for admins and operators), oldest first. */
  async list(requester: Requester): Promise<SiteView[]> {
    let query = this.deps.db.selectFrom('edge_sites').selectAll().where('deleted_at', 'is', null);
    if (!requester.all) query = query.where('owner_id', '=', requester.userId);
    return (await query.orderBy('created_at').orderBy('id').execute()).map(siteView);
  }

  /** Per node: the version it serves, or the edge's error for the version it rejected. */
  async deployments(id: string, requester: Requester): Promise<SiteDeploymentView[]> {
    await this.row(id, requester);
    const rows = await this.deps.db.selectFrom('edge_site_deployments').selectAll().where('site_id', '=', id).orderBy('node_id').execute();
    return rows.map((r) => ({ nodeId: r.node_id, appliedVersion: r.applied_version, status: r.status, error: r.error, updatedAt: r.updated_at.toISOString() }));
  }

  /** The sites an edge node with these labels serves: those whose nodeLabels intersect them, and those with none. By domain. */
  async desiredFor(nodeLabels: string[]): Promise<SiteSpec[]> {
    const rows = await this.deps.db
      .selectFrom('edge_sites')
      .selectAll()
      .where('deleted_at', 'is', null)
      .where(sql<boolean>`(cardinality(node_labels) = 0 or node_labels && ${sql.val(nodeLabels)}::text[])`)
      .orderBy('domain')
      .execute();
    return rows.map(specOf);
  }
}
