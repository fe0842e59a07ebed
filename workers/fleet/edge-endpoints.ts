/**
 * The fleet's side of edge nodes (docs/edge.md#adding-an-edge-node): what an
 * edge node's agent asks for (`edge-desired`: the sites its labels select)
 * and reports (`edge-report`: each site applied or rejected, recorded in
 * `edge_site_deployments`), and the push that tells every edge node to ask
 * again when the `edge-sites` read model moves. The node id always comes from
 * the subject (AgentEndpoints), never from a body.
 *
 * ACME (docs/edge-acme.md): `edge-desired` also names each ACME site's
 * current certificate (serial and expiry, from `edge_certificates`) and the
 * HTTP-01 answers of its sites being validated now; `edge-certificate` hands
 * a node the certificate and key of a site it serves, opened from the sealed
 * store, over the node's own subject and reply inbox (no read model, no log
 * holds them); `edge-report`'s `challenges` are the node's acknowledgement
 * that it serves those tokens (producers/edge/acme/fleet-challenge-publisher.ts).
 */
import { X509Certificate } from 'node:crypto';
import type { Logger } from '../../infra/logger.js';
import { DomainError } from '../../producers/decider.js';
import { edgeDesired } from '../../producers/edge/edge-desired.js';
import type { CertificateStore } from '../../producers/edge/acme/certificate-store.js';
import { EDGE_CERTIFICATES_PROJECTOR } from '../../projectors/edge/certificates.projection.js';
import { liveEdgeNodes } from '../../producers/edge/edge-nodes.js';
import type { CertificateRef, ChallengeAnswer, SiteOutcome, SiteSpec } from '../../producers/edge/model.js';
import type { Sites } from '../../producers/edge/sites.js';
import type { FleetDeps } from '../../producers/fleet/fleet-deps.js';
import { EDGE_SITES_PROJECTOR } from '../../projectors/edge/sites.projection.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import type { EdgeCertificateReply, EdgeCertificateRequest, EdgeDesiredReply, EdgeReportRequest } from './agent-protocol.js';

export { EDGE_ROLE } from '../../producers/edge/edge-nodes.js';

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
    /** Where ACME certificates are kept sealed; without it nodes get no ACME certificates. */
    private readonly certificates?: Pick<CertificateStore, 'get'>,
  ) {}

  /** Pushes every edge node whenever the sites' read model commits (the agents' periodic sync covers a lost push). */
  async start(): Promise<void> {
    this.unsubscribe = await this.watcher.onMove([EDGE_SITES_PROJECTOR, EDGE_CERTIFICATES_PROJECTOR], () => this.schedulePush());
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
    return liveEdgeNodes(this.d.db);
  }

  /** The node's labels when it is a live edge node; null for any other node (it serves no sites). */
  private async edgeLabels(nodeId: string): Promise<string[] | null> {
    const row = await this.edgeNodes().select('labels').where('id', '=', nodeId).executeTakeFirst();
    return row ? row.labels : null;
  }

  async desired(nodeId: string): Promise<EdgeDesiredReply> {
    const labels = await this.edgeLabels(nodeId);
    const sites = labels ? await this.sites.desiredFor(labels) : [];
    const [certificates, challenges] = await Promise.all([this.certificateRefs(sites), this.challenges(sites)]);
    return { ...edgeDesired(sites, certificates), challenges };
  }

  /** The current certificate of each of `sites` in ACME mode that has one. */
  private async certificateRefs(sites: SiteSpec[]): Promise<CertificateRef[]> {
    const acme = sites.filter((site) => site.tls.mode === 'acme').map((site) => site.siteId);
    if (!this.certificates || acme.length === 0) return [];
    const rows = await this.d.db.selectFrom('edge_certificates').select(['site_id', 'serial', 'not_after']).where('site_id', 'in', acme).where('serial', 'is not', null).orderBy('site_id').execute();
    return rows.flatMap((r) => (r.serial && r.not_after ? [{ siteId: r.site_id, serial: r.serial, notAfter: r.not_after.toISOString() }] : []));
  }

  private async challenges(sites: SiteSpec[]): Promise<ChallengeAnswer[]> {
    if (sites.length === 0) return [];
    const ids = sites.map((site) => site.siteId);
    const rows = await this.d.db.selectFrom('edge_acme_challenges').select(['token', 'key_authorization']).where('site_id', 'in', ids).orderBy('token').execute();
    return rows.map((r) => ({ token: r.token, keyAuthorization: r.key_authorization }));
  }

  /** The ACME certificate and key of a site the node serves; any other site is refused like one that does not exist. */
  async certificate(nodeId: string, body: EdgeCertificateRequest): Promise<EdgeCertificateReply> {
    const siteId = typeof body?.siteId === 'string' ? body.siteId : '';
    const labels = await this.edgeLabels(nodeId);
    const served = labels ? (await this.sites.desiredFor(labels)).some((site) => site.siteId === siteId && site.tls.mode === 'acme') : false;
    const stored = served && this.certificates ? await this.certificates.get(siteId) : null;
    if (!stored) throw new DomainError('site_not_found', 'no ACME certificate for a site this node serves');
    return { siteId, serial: new X509Certificate(stored.certificatePem).serialNumber, certificatePem: stored.certificatePem, privateKeyPem: stored.privateKeyPem, notAfter: stored.notAfter.toISOString() };
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
    if (body.challenges !== undefined) await this.acknowledge(nodeId, body.challenges, now);
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

  /** The node serves exactly these tokens now: its acknowledgements of others are withdrawn, those of tokens still being validated recorded. */
  private async acknowledge(nodeId: string, tokens: unknown, now: Date): Promise<void> {
    if (!Array.isArray(tokens) || !tokens.every((t): t is string => typeof t === 'string')) throw invalid('challenges must be an array of tokens');
    let withdrawn = this.d.db.deleteFrom('edge_acme_challenge_acks').where('node_id', '=', nodeId);
    if (tokens.length > 0) withdrawn = withdrawn.where('token', 'not in', tokens);
    await withdrawn.execute();
    if (tokens.length === 0) return;
    // Only tokens still being validated: the leader may have taken one down since the node fetched it.
    await this.d.db
      .insertInto('edge_acme_challenge_acks')
      .columns(['token', 'node_id', 'acked_at'])
      .expression((eb) => eb.selectFrom('edge_acme_challenges').select((s) => ['token', s.val(nodeId).as('node_id'), s.val(now).as('acked_at')]).where('token', 'in', tokens))
      .onConflict((oc) => oc.columns(['token', 'node_id']).doNothing())
      .execute();
  }
}
