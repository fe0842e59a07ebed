/**
 * `relaygrid replay rebuild <projector>`: a blue/green rebuild.
 *
 *   1. Fresh copies of the projection's tables in a scratch schema (`like …
 *      including all`), so the live ones keep serving reads throughout.
 *   2. A second projector instance (`<name>~rebuild`, its own checkpoint and
 *      lock) projects the whole log into the copies: every batch sets
 *      `search_path` to the scratch schema first, so the projection code is
 *      exactly the live one. Projections only write read models, so nothing a
 *      worker or notifier reacts to is triggered again.
 *   3. At the live tail, one transaction locks the live tables, checks the
 *      rebuild is not behind the live checkpoint, moves the live tables out and
 *      the copies in (with the old index names), and sets the live checkpoint
 *      to the rebuild's. A live batch waiting on the lock then fails its fenced
 *      checkpoint and resumes after the switch, so nothing is applied twice.
 *   4. The old tables are dropped.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { projectorDeps } from '../infra/roles/projectors.js';
import type { Runtime } from '../infra/runtime.js';
import { PROJECTIONS } from '../projectors/catalogue.js';
import type { Projection } from '../projectors/runtime/projection.js';
import { Projector } from '../projectors/runtime/projector.js';
import { CHECKPOINT_CHANNEL } from '../projectors/runtime/checkpoints.js';
import type { Database } from '../schema/database.js';
import { Progress } from './progress.js';
import { pendingFrom, ReplayArgumentError } from './range.js';

const SWITCH_ATTEMPTS = 20;

export interface RebuildReport {
  projector: string;
  messages: number;
  checkpoint: number;
  seconds: number;
}

export async function runRebuild(rt: Runtime, args: string[]): Promise<void> {
  const [name, ...extra] = args;
  if (!name || extra.length > 0) throw new ReplayArgumentError(`<projector>: name one projector (known: ${[...PROJECTIONS.keys()].join(', ')})`);
  await rebuild(rt, name, { progress: true });
}

function projectionNamed(name: string): Projection {
  const projection = PROJECTIONS.get(name);
  if (!projection) throw new ReplayArgumentError(`<projector>: unknown projector "${name}" (known: ${[...PROJECTIONS.keys()].join(', ')})`);
  return projection;
}

/** The name (checkpoint, lock, metrics) of a projector's rebuild instance. */
export function rebuildNameOf(projector: string): string {
  return `${projector}~rebuild`;
}

/** The projection, writing into `schema` instead of public. */
function intoSchema(projection: Projection, schema: string): Projection {
  return {
    ...projection,
    name: rebuildNameOf(projection.name),
    async apply(trx, events, ctx) {
      await sql`select set_config('search_path', ${`${schema}, public`}, true)`.execute(trx);
      await projection.apply(trx, events, ctx);
    },
  };
}

export async function rebuild(rt: Runtime, name: string, opts: { progress?: boolean } = {}): Promise<RebuildReport> {
  const projection = projectionNamed(name);
  const started = performance.now();
  const schema = `rebuild_${name.replace(/[^a-z0-9]/g, '_')}_${Date.now().toString(36)}`;
  const rebuildName = rebuildNameOf(name);
  await sql`create schema ${sql.id(schema)}`.execute(rt.db);
  try {
    for (const table of projection.tables) {
      await sql`create table ${sql.id(schema, table)} (like ${sql.id('public', table)} including all)`.execute(rt.db);
    }
    await rt.db.deleteFrom('projector_checkpoints').where('projector', '=', rebuildName).execute();
    const total = await pendingFrom(rt.nats, rt.names.stream(projection.context), 1, projection.filter(rt.names));
    const progress = opts.progress ? new Progress(`rebuild ${name}`, total, 'messages') : undefined;
    for (let attempt = 1; ; attempt++) {
      const checkpoint = await projectToTail(rt, intoSchema(projection, schema), (lag) => progress?.set(total - lag));
      if (await switchTables(rt.db, projection, schema, rebuildName)) {
        const seconds = (performance.now() - started) / 1000;
        progress?.finish(`switched ${projection.tables.join(', ')} at sequence ${checkpoint}`);
        return { projector: name, messages: total, checkpoint, seconds };
      }
      if (attempt >= SWITCH_ATTEMPTS) throw new Error(`rebuild of ${name} could not catch up with the live projector in ${SWITCH_ATTEMPTS} attempts`);
    }
  } finally {
    await rt.db.deleteFrom('projector_checkpoints').where('projector', '=', rebuildName).execute();
    await sql`drop schema if exists ${sql.id(schema)} cascade`.execute(rt.db);
  }
}

/** Runs the rebuild projector until it has no lag, then stops it; answers its checkpoint. */
async function projectToTail(rt: Runtime, projection: Projection, onLag: (lag: number) => void): Promise<number> {
  const projector = new Projector({ ...projectorDeps(rt), projection });
  const running = projector.run();
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, 100));
      const status = projector.status();
      if (status.state === 'stopped') throw new Error(`rebuild stopped at sequence ${status.failure?.seq}: ${status.failure?.error}`);
      // Lag is measured after a batch: before the first one there is none to report.
      if (status.state !== 'running' || status.checkpoint === 0 || status.lag === null) continue;
      onLag(status.lag);
      if (status.lag > 0) continue;
      // No lag, and nothing newer in the stream than what the consumer has seen.
      const last = (await rt.nats.jsm.streams.info(rt.names.stream(projection.context))).state.last_seq;
      if (await caughtUp(rt, projection, status.checkpoint, last)) return status.checkpoint;
    }
  } finally {
    await projector.close();
    await running;
  }
}

/** True when no message of the projection's filter lies after `checkpoint` (up to `last`, the stream's last sequence). */
export async function caughtUp(rt: Runtime, projection: Projection, checkpoint: number, last: number): Promise<boolean> {
  if (checkpoint >= last) return true;
  const next = await rt.nats.jsm.direct.getMessage(rt.names.stream(projection.context), { seq: checkpoint + 1, next_by_subj: projection.filter(rt.names) });
  return !next || next.seq > last;
}

/** The atomic switch; false when the live projector got ahead and the rebuild must catch up again. */
async function switchTables(db: Kysely<Database>, projection: Projection, schema: string, rebuildName: string): Promise<boolean> {
  const retired = `${schema}_retired`;
  const switched = await db.transaction().execute(async (trx) => {
    for (const table of projection.tables) await sql`lock table ${sql.id('public', table)} in access exclusive mode`.execute(trx);
    const rows = await trx
      .selectFrom('projector_checkpoints')
      .select(['projector', 'stream', 'seq', 'event_id'])
      .where('projector', 'in', [projection.name, rebuildName])
      .forUpdate()
      .execute();
    const live = rows.find((r) => r.projector === projection.name);
    const fresh = rows.find((r) => r.projector === rebuildName);
    if (!fresh || (live && live.seq > fresh.seq)) return false;
    await sql`create schema ${sql.id(retired)}`.execute(trx);
    for (const table of projection.tables) {
      await sql`alter table ${sql.id('public', table)} set schema ${sql.id(retired)}`.execute(trx);
      await sql`alter table ${sql.id(schema, table)} set schema public`.execute(trx);
      await adoptIndexNames(trx, retired, table);
    }
    await trx
      .insertInto('projector_checkpoints')
      .values({ projector: projection.name, stream: fresh.stream, seq: fresh.seq, event_id: fresh.event_id })
      .onConflict((oc) => oc.column('projector').doUpdateSet({ seq: fresh.seq, event_id: fresh.event_id, updated_at: sql<Date>`now()` }))
      .execute();
    await sql`select pg_notify(${CHECKPOINT_CHANNEL}, ${`${projection.name}:${fresh.seq}`})`.execute(trx);
    return true;
  });
  if (switched) await sql`drop schema ${sql.id(retired)} cascade`.execute(db);
  return switched;
}

/**
 * `like … including all` names the copied indexes itself (`users_email_idx`);
 * give each the name its twin had on the retired table, so migrations that
 * name indexes keep working after a rebuild.
 */
async function adoptIndexNames(trx: Transaction<Database>, retired: string, table: string): Promise<void> {
  const indexes = async (schema: string) =>
    (
      await sql<{ name: string; def: string }>`select indexname as name, indexdef as def from pg_indexes where schemaname = ${schema} and tablename = ${table}`.execute(trx)
    ).rows.map((r) => ({ name: r.name, shape: r.def.replace(/INDEX \S+ ON \S+/, 'INDEX ON t') }));
  const old = await indexes(retired);
  const fresh = await indexes('public');
  for (const index of old) await sql`alter index ${sql.id(retired, index.name)} rename to ${sql.id(`${index.name}_retired`)}`.execute(trx);
  for (const index of fresh) {
    const twin = old.find((o) => o.shape === index.shape);
    if (twin && twin.name !== index.name) await sql`alter index ${sql.id('public', index.name)} rename to ${sql.id(twin.name)}`.execute(trx);
  }
}
