/**
 * The edge's ACME leader (docs/edge-acme.md#the-leader): one instance in the
 * fleet (the scheduler's advisory lock, `scheduler:edge-acme`) orders every
 * due site's certificate (producers/edge/acme/acme-certificates.ts), so one
 * domain set is one order for all edge nodes. The others stand by and take
 * over within a second. The account key is read (or made) by the first fire,
 * which only a leader runs.
 */
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import type { ContextDeps } from '../../producers/context-deps.js';
import { AcmeIssuer, newAccountKeyPem } from '../../producers/edge/acme/acme-issuer.js';
import { AcmeCertificates, type CertificateDue } from '../../producers/edge/acme/acme-certificates.js';
import type { CertificateStore } from '../../producers/edge/acme/certificate-store.js';
import { FleetChallengePublisher, type FleetChallengePublisherOptions } from '../../producers/edge/acme/fleet-challenge-publisher.js';
import type { EdgeAggregate } from '../../producers/edge/site-names.js';
import type { Clock } from '../scheduler/clock.js';
import { runScheduler, type Scheduler } from '../scheduler/scheduler.js';

export interface AcmeSchedulerOptions {
  directoryUrl: string;
  contactEmail?: string;
  databaseUrl: string;
  deps: ContextDeps<EdgeAggregate>;
  store: CertificateStore;
  push: FleetChallengePublisherOptions['push'];
  log: Logger;
  metrics: Metrics;
  clock?: Clock;
  pollMs?: number;
  /** First wait after a failed order (default 1 min). */
  retryBaseMs?: number;
  /** How long edge nodes have to serve a token (default 60 s). */
  ackTimeoutMs?: number;
  /** acme-client's polling of authorizations and orders (defaults 5 s and 30 s). */
  acmePollMinMs?: number;
  acmePollMaxMs?: number;
}

const keyOf = (item: CertificateDue): string => `${item.siteId}:${item.domains.join(',')}:${item.serial ?? '-'}#${item.failures}`;

export function startAcmeScheduler(opts: AcmeSchedulerOptions): Scheduler {
  const log = opts.log.child({ component: 'edge-acme' });
  let issuer: Promise<AcmeIssuer> | undefined;
  const issuerOnce = (): Promise<AcmeIssuer> => {
    issuer ??= opts.store.accountKey(opts.directoryUrl, newAccountKeyPem).then(
      (accountKeyPem) =>
        new AcmeIssuer({ directoryUrl: opts.directoryUrl, accountKeyPem, ...(opts.contactEmail ? { contactEmail: opts.contactEmail } : {}), pollMinMs: opts.acmePollMinMs, pollMaxMs: opts.acmePollMaxMs }),
      (err: unknown) => {
        issuer = undefined;
        throw err;
      },
    );
    return issuer;
  };
  const publisherOptions: FleetChallengePublisherOptions = { db: opts.deps.db, push: opts.push, ...(opts.ackTimeoutMs === undefined ? {} : { ackTimeoutMs: opts.ackTimeoutMs }) };
  const certificates = new AcmeCertificates({
    deps: opts.deps,
    store: opts.store,
    issuer: { issue: async (domains, publisher) => (await issuerOnce()).issue(domains, publisher) },
    publisherFor: (siteId) => new FleetChallengePublisher(siteId, publisherOptions),
    log,
    ...(opts.retryBaseMs === undefined ? {} : { retryBaseMs: opts.retryBaseMs }),
  });
  const now = () => opts.clock?.now() ?? new Date();
  return runScheduler<CertificateDue>({
    name: 'edge-acme',
    databaseUrl: opts.databaseUrl,
    due: (at, limit) => certificates.due(at, limit),
    keyOf,
    dueAtOf: (item) => item.dueAt,
    fire: (item) => certificates.fire(item, now),
    log,
    metrics: opts.metrics,
    // An order is a few seconds of the CA's time and our nodes'; a handful at once keeps within CA rate limits.
    concurrency: 4,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
  });
}
