/**
 * `edge_certificates`: per site, its current ACME certificate's serial and
 * dates, and the failed orders since (count, next try, the last error), from
 * the site's certificate events (producers/edge/acme/certificate.decider.ts).
 * What the ACME scheduler reads to know what is due; never key material.
 */
import type { Selectable } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { EdgeCertificateTable } from '../../schema/database.js';
import type { Projection } from '../runtime/projection.js';
import { tokenArrayColumn, upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';

type CertificateRow = Selectable<EdgeCertificateTable>;

const COLUMNS: UnnestColumn<CertificateRow>[] = [
  { name: 'site_id', arrayType: 'text[]', value: (r) => r.site_id },
  // Hostnames are tokens (site-validation.ts).
  tokenArrayColumn<CertificateRow>('domains', (r) => r.domains),
  ...(['serial', 'last_error'] as const).map((name) => ({ name, arrayType: 'text[]', value: (r: CertificateRow) => r[name] })),
  ...(['not_before', 'not_after', 'renew_at', 'retry_at', 'updated_at'] as const).map((name) => ({ name, arrayType: 'timestamptz[]', value: (r: CertificateRow) => r[name] })),
  { name: 'failures', arrayType: 'integer[]', value: (r) => r.failures },
  { name: 'last_seq', arrayType: 'bigint[]', value: (r) => r.last_seq },
];

function fresh(siteId: string): CertificateRow {
  return { site_id: siteId, domains: [], serial: null, not_before: null, not_after: null, renew_at: null, failures: 0, retry_at: null, last_error: null, updated_at: new Date(0), last_seq: 0 };
}

function step(row: CertificateRow, event: StoredEvent): CertificateRow {
  switch (event.type) {
    case 'edge.CertificateIssued': {
      const d = event.data;
      return { ...row, domains: d.domains, serial: d.serial, not_before: d.notBefore, not_after: d.notAfter, renew_at: d.renewAt, failures: 0, retry_at: null, last_error: null, updated_at: d.issuedAt, last_seq: event.seq };
    }
    case 'edge.CertificateRenewalFailed': {
      const d = event.data;
      return { ...row, domains: d.domains, failures: d.attempt, retry_at: d.retryAt, last_error: d.error, updated_at: d.failedAt, last_seq: event.seq };
    }
    default:
      return row;
  }
}

const siteIdOf = (event: StoredEvent): string | null => (event.type === 'edge.CertificateIssued' || event.type === 'edge.CertificateRenewalFailed' ? event.data.siteId : null);

export const EDGE_CERTIFICATES_PROJECTOR = 'edge-certificates';

export const edgeCertificatesProjection: Projection = {
  name: EDGE_CERTIFICATES_PROJECTOR,
  context: 'edge',
  tables: ['edge_certificates'],
  filter: (names) => names.aggregateSubjects('edge', 'certificate'),
  async apply(trx, events) {
    const ids = [...new Set(events.flatMap((e) => siteIdOf(e) ?? []))];
    if (ids.length === 0) return;
    const stored = await trx.selectFrom('edge_certificates').selectAll().where('site_id', 'in', ids).execute();
    const rows = new Map(stored.map((r) => [r.site_id, r]));
    for (const event of events) {
      const id = siteIdOf(event);
      if (id !== null) rows.set(id, step(rows.get(id) ?? fresh(id), event));
    }
    await upsertUnnest(trx, 'edge_certificates', COLUMNS, [...rows.values()], ['site_id']);
  },
};
