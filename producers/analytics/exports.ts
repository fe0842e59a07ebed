/**
 * Export jobs (POST /v1/analytics/exports): a row in `analytics_exports`,
 * run in the API process that took it. The rows stream from a server-side
 * cursor (DECLARE … FETCH in one transaction) into a file, so memory does not
 * grow with the export; progress (`rows_done` of `rows_total`, counted at
 * the start) is written after every fetch. The finished file is renamed into
 * place and offered through a link signed with HMAC-SHA256 (a key derived
 * from RG_MASTER_KEY) that expires after RG_EXPORT_LINK_TTL seconds.
 *
 * Whose rows: a client's own; an analyst's, operator's or admin's the whole
 * fleet's, or one user's with `userId`. Personal columns (datasets.ts) only
 * when the rows are the caller's own.
 *
 * Known limit: a job lives in the process that runs it. A process that stops
 * mid-export leaves the job `running` for good (its partial file is not
 * offered); several API processes need a shared RG_EXPORT_DIR and, for a
 * download, any of them will do.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql, type Kysely, type Selectable } from 'kysely';
import { uuidv7 } from '../../contracts/ids.js';
import type { Logger } from '../../infra/logger.js';
import type { AnalyticsExportTable, Database } from '../../schema/database.js';
import { DomainError } from '../decider.js';
import { deriveKey } from '../identity/crypto/sealing.js';
import type { PersonKeys } from '../identity/crypto/person-keys.js';
import { openIp } from '../usage/connection-history.js';
import { columnsOf, DATASET_SPECS, type Dataset, type ExportFormat } from './datasets.js';
import { openSink, type Row } from './export-sinks.js';

/** Rows per FETCH: a few MB of rows at most in memory at once. */
const FETCH_ROWS = 5_000;
const MAX_RANGE_DAYS = 400;

export interface ExportRequest {
  dataset: Dataset;
  format: ExportFormat;
  from: string;
  to: string;
  userId?: string | undefined;
}

export interface ExportsOptions {
  db: Kysely<Database>;
  keys: PersonKeys;
  masterKey: Buffer;
  log: Logger;
  dir: string | null;
  namespace: string;
  linkTtlSeconds: number;
}

export class Exports {
  private readonly key: Buffer;
  private readonly dir: string;
  private readonly running = new Set<Promise<void>>();

  constructor(private readonly opts: ExportsOptions) {
    this.key = deriveKey(opts.masterKey, 'analytics-export-links');
    this.dir = opts.dir ?? join(tmpdir(), 'relaygrid-exports', opts.namespace);
  }

  /** Records the job and starts it; answers at once with the queued job. */
  async create(callerId: string, fleetReader: boolean, req: ExportRequest, now = new Date()) {
    const from = new Date(req.from);
    const to = new Date(req.to);
    if (from.getTime() >= to.getTime()) throw new DomainError('invalid_export', 'from: must be before to', { field: 'from' });
    if (to.getTime() - from.getTime() > MAX_RANGE_DAYS * 86_400_000) throw new DomainError('invalid_export', `from: at most ${MAX_RANGE_DAYS} days before to`, { field: 'from' });
    if (req.userId !== undefined && req.userId !== callerId && !fleetReader) throw new DomainError('forbidden_export', "userId: another user's rows are for analysts and operators", { field: 'userId' });
    const scope = req.userId ?? (fleetReader ? null : callerId);
    const row = await this.opts.db
      .insertInto('analytics_exports')
      .values({ id: uuidv7(now.getTime()), owner_id: callerId, scope_user_id: scope, dataset: req.dataset, format: req.format, range_from: from, range_to: to, personal: scope === callerId, status: 'queued', created_at: now })
      .returningAll()
      .executeTakeFirstOrThrow();
    const job = this.run(row).catch((err: unknown) => this.opts.log.error({ err, exportId: row.id }, 'analytics export: could not record its failure'));
    this.running.add(job);
    void job.finally(() => this.running.delete(job));
    return this.view(row, now);
  }

  /** The caller's job (someone else's is not found). */
  async get(callerId: string, id: string, now = new Date()) {
    const row = await this.opts.db.selectFrom('analytics_exports').selectAll().where('id', '=', id).where('owner_id', '=', callerId).executeTakeFirst();
    if (!row) throw new DomainError('export_not_found', 'no such export');
    return this.view(row, now);
  }

  /** The finished file a link points at, once its signature and expiry check out. */
  async download(id: string, expires: number, signature: string, now = new Date()): Promise<{ path: string; format: ExportFormat; dataset: Dataset }> {
    const expected = Buffer.from(this.sign(id, expires));
    const given = Buffer.from(signature);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new DomainError('invalid_link', 'signature: not a link this API gave', { field: 'signature' });
    if (now.getTime() > expires) throw new DomainError('export_link_expired', 'the link has expired: read the export again for a new one');
    const row = await this.opts.db.selectFrom('analytics_exports').select(['status', 'format', 'dataset']).where('id', '=', id).executeTakeFirst();
    if (row?.status !== 'done') throw new DomainError('export_not_found', 'no such export');
    return { path: this.fileOf(id, row.format as ExportFormat), format: row.format as ExportFormat, dataset: row.dataset as Dataset };
  }

  /** Waits for the jobs in flight (shutdown). */
  async close(): Promise<void> {
    await Promise.allSettled([...this.running]);
  }

  private sign(id: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${id}:${expires}`).digest('base64url');
  }

  private fileOf(id: string, format: ExportFormat): string {
    return join(this.dir, `${id}.${format}`);
  }

  private view(r: Selectable<AnalyticsExportTable>, now: Date) {
    const total = r.rows_total === null ? null : Number(r.rows_total);
    const done = Number(r.rows_done);
    const expires = now.getTime() + this.opts.linkTtlSeconds * 1000;
    return {
      id: r.id,
      dataset: r.dataset,
      format: r.format,
      from: r.range_from.toISOString(),
      to: r.range_to.toISOString(),
      userId: r.scope_user_id,
      personal: r.personal,
      status: r.status,
      rowsDone: done,
      rowsTotal: total,
      progress: r.status === 'done' ? 1 : total ? Math.min(1, done / total) : 0,
      bytes: r.bytes === null ? null : Number(r.bytes),
      error: r.error,
      createdAt: r.created_at.toISOString(),
      finishedAt: r.finished_at?.toISOString() ?? null,
      download: r.status === 'done' ? { url: `/v1/analytics/exports/${r.id}/download?expires=${expires}&signature=${this.sign(r.id, expires)}`, expiresAt: new Date(expires).toISOString() } : null,
    };
  }

  private async run(job: Selectable<AnalyticsExportTable>): Promise<void> {
    const { db } = this.opts;
    const path = this.fileOf(job.id, job.format as ExportFormat);
    const partial = `${path}.partial`;
    try {
      await mkdir(this.dir, { recursive: true });
      const rows = await this.stream(job, partial);
      await rename(partial, path);
      const { size } = await stat(path);
      await db.updateTable('analytics_exports').set({ status: 'done', rows_done: String(rows), rows_total: String(rows), bytes: size, finished_at: new Date() }).where('id', '=', job.id).execute();
      this.opts.log.info({ exportId: job.id, dataset: job.dataset, format: job.format, rows, bytes: size }, 'analytics export done');
    } catch (err) {
      await rm(partial, { force: true });
      this.opts.log.error({ err, exportId: job.id }, 'analytics export failed');
      await db.updateTable('analytics_exports').set({ status: 'failed', error: 'the export failed; see the API log', finished_at: new Date() }).where('id', '=', job.id).execute();
    }
  }

  /** Streams the job's rows into `path` through a cursor; answers how many. */
  private async stream(job: Selectable<AnalyticsExportTable>, path: string): Promise<number> {
    const dataset = job.dataset as Dataset;
    const spec = DATASET_SPECS[dataset];
    const columns = columnsOf(dataset, job.personal);
    const selected = sql.join(
      columns.map((c) =>
        c.name === 'client_ip' ? sql`client_ip_sealed` : c.kind === 'long' ? sql`${sql.ref(c.name)}::text as ${sql.id(c.name)}` : sql.ref(c.name),
      ),
    );
    const owner = job.scope_user_id === null ? sql`true` : sql`${sql.ref(spec.owner)} = ${job.scope_user_id}`;
    const where = sql`${owner} and ${sql.ref(spec.time)} >= ${job.range_from} and ${sql.ref(spec.time)} < ${job.range_to}`;
    const table = sql.table(spec.table);
    const { db } = this.opts;
    const [counted] = (await sql<{ n: string }>`select count(*)::text as n from ${table} where ${where}`.execute(db)).rows;
    await db.updateTable('analytics_exports').set({ status: 'running', rows_total: counted?.n ?? '0' }).where('id', '=', job.id).execute();
    const personKey = job.personal && dataset === 'connections' && job.scope_user_id ? await this.opts.keys.get(job.scope_user_id) : undefined;
    const sink = openSink(path, job.format as ExportFormat, dataset, columns, job.personal);
    let done = 0;
    try {
      await db.transaction().execute(async (trx) => {
        await sql`declare analytics_export no scroll cursor for select ${selected} from ${table} where ${where} order by ${sql.join(spec.order.map((c) => sql.ref(c)))}`.execute(trx);
        for (;;) {
          const { rows } = await sql<Row & { client_ip_sealed?: Buffer | null }>`fetch ${sql.raw(String(FETCH_ROWS))} from analytics_export`.execute(trx);
          if (rows.length === 0) break;
          for (const row of rows) {
            if ('client_ip_sealed' in row) {
              row['client_ip'] = openIp(personKey, job.scope_user_id ?? '', row.client_ip_sealed ?? null);
              delete row.client_ip_sealed;
            }
            const wait = sink.write(row);
            if (wait) await wait;
          }
          done += rows.length;
          await db.updateTable('analytics_exports').set({ rows_done: String(done) }).where('id', '=', job.id).execute();
        }
      });
      await sink.end();
    } catch (err) {
      sink.destroy();
      throw err;
    }
    return done;
  }
}
