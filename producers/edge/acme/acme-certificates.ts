/**
 * The ACME leader's work (docs/edge-acme.md#the-leader): which sites with
 * `tls.mode = 'acme'` need an order now, and the order itself. One leader in
 * the fleet runs it (workers/edge/acme-scheduler.ts), so each domain set is
 * ordered once for all edge nodes.
 *
 * A site is due when it has no certificate for exactly its names (new site,
 * or its domain or aliases changed), or at its certificate's `renewAt` (two
 * thirds of the lifetime), but never before the `retryAt` its last failure
 * set (for the same names). Firing orders through the fleet's challenge
 * publisher (every node serving the site answers the token), stores the
 * certificate sealed, then records `CertificateIssued`; a failed order
 * records `CertificateRenewalFailed` with the error and the next try, and
 * resolves: the backoff lives in the log, not in the scheduler's memory.
 */
import { X509Certificate } from 'node:crypto';
import { sql } from 'kysely';
import type { Logger } from '../../../infra/logger.js';
import type { ContextDeps } from '../../context-deps.js';
import type { EdgeAggregate } from '../site-names.js';
import type { AcmeIssuer } from './acme-issuer.js';
import { certificateDecider, type CertificateCommand } from './certificate.decider.js';
import type { CertificateStore } from './certificate-store.js';
import type { ChallengePublisher } from './challenge-publisher.js';

export interface CertificateDue {
  siteId: string;
  /** The site's names now, its domain first: what the order asks for. */
  domains: string[];
  /** The certificate it replaces; null for a site's first. */
  serial: string | null;
  failures: number;
  dueAt: Date;
}

export interface AcmeCertificatesOptions {
  deps: ContextDeps<EdgeAggregate>;
  issuer: Pick<AcmeIssuer, 'issue'>;
  store: Pick<CertificateStore, 'put'>;
  /** The site's publisher: every edge node serving it must answer its tokens. */
  publisherFor(siteId: string): ChallengePublisher;
  log: Logger;
  /** First wait after a failure (default 1 min, then doubling: renewal.ts). */
  retryBaseMs?: number;
}

const ACTOR = { actor: 'system:edge-acme' };

export class AcmeCertificates {
  constructor(private readonly o: AcmeCertificatesOptions) {}

  /** ACME sites due at `now`, oldest first. */
  async due(now: Date, limit: number): Promise<CertificateDue[]> {
    const names = sql<string[]>`(array[s.domain] || s.aliases)`;
    const sameNames = sql<boolean>`(c.domains = ${names})`;
    const dueAt = sql<Date>`greatest(
      case when c.serial is null or not ${sameNames} then s.updated_at else c.renew_at end,
      case when ${sameNames} then c.retry_at end)`;
    const rows = await this.o.deps.db
      .selectFrom('edge_sites as s')
      .leftJoin('edge_certificates as c', 'c.site_id', 's.id')
      .where('s.deleted_at', 'is', null)
      .where(sql<boolean>`s.settings->'tls'->>'mode' = 'acme'`)
      .where(dueAt, '<=', now)
      .select(['s.id', 'c.serial', 'c.failures'])
      .select(names.as('domains'))
      .select(sameNames.as('same_names'))
      .select(dueAt.as('due_at'))
      .orderBy('due_at')
      .orderBy('s.id')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ siteId: r.id, domains: r.domains, serial: r.serial, failures: r.same_names ? (r.failures ?? 0) : 0, dueAt: new Date(r.due_at) }));
  }

  /** One order for the site's names: stored and recorded, or its failure recorded. Throws only when nothing could be recorded. */
  async fire(item: CertificateDue, now: () => Date): Promise<void> {
    const { siteId, domains } = item;
    const log = this.o.log.child({ siteId, domains });
    let issued;
    try {
      issued = await this.o.issuer.issue(domains, this.o.publisherFor(siteId));
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      const retryBaseMs = this.o.retryBaseMs;
      await this.record({ type: 'RecordFailure', siteId, domains, error, at: now(), ...(retryBaseMs === undefined ? {} : { retryBaseMs }) });
      log.warn({ error, attempt: item.failures + 1 }, 'ACME order failed; recorded, retried with backoff');
      return;
    }
    const serial = new X509Certificate(issued.certificatePem).serialNumber;
    // Stored before it is recorded: a node told about the serial must find it in the store.
    await this.o.store.put({ siteId, domains, ...issued });
    await this.record({ type: 'RecordIssued', siteId, domains, serial, notBefore: issued.notBefore, notAfter: issued.notAfter, at: now() });
    log.info({ serial, notAfter: issued.notAfter.toISOString(), renewal: item.serial !== null }, 'ACME certificate issued');
  }

  private async record(command: CertificateCommand): Promise<void> {
    await this.o.deps.decide(certificateDecider, 'certificate', command.siteId, command, ACTOR);
  }
}
