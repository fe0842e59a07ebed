/**
 * `relaygrid replay into --database-url <url> [--from …] [--to …]`: every
 * projector over a range of the log into another database, for ad-hoc
 * analysis that never touches production's read models.
 *
 * Scratch copies are pseudonymous: they get the read-model tables and their
 * own (empty) keyring, so sealed personal data stays sealed — analysts see
 * ids, states, roles and times, not emails or names.
 */
import { parseArgs } from 'node:util';
import type { Kysely } from 'kysely';
import { decodeMessage, rawMessageOf, type StoredEvent } from '../contracts/envelope.js';
import { requireMasterKey } from '../infra/config.js';
import type { Runtime } from '../infra/runtime.js';
import { PersonKeys } from '../producers/identity/crypto/person-keys.js';
import { PROJECTIONS } from '../projectors/catalogue.js';
import type { Projection } from '../projectors/runtime/projection.js';
import { createDb, createPool, migrateDatabase } from '../schema/db.js';
import type { Database } from '../schema/database.js';
import { Progress } from './progress.js';
import { parseBound, readRange, ReplayArgumentError, resolveRange, type Bound } from './range.js';

const BATCH = 2000;

export async function runInto(rt: Runtime, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({ args, options: { 'database-url': { type: 'string' }, from: { type: 'string' }, to: { type: 'string' } }, allowPositionals: true });
  if (positionals.length > 0) throw new ReplayArgumentError(`unexpected argument "${positionals[0]}"`);
  const url = values['database-url'];
  if (!url || !/^postgres(ql)?:\/\//.test(url)) throw new ReplayArgumentError('--database-url: a postgres:// URL of the scratch database');
  if (url === rt.config.databaseUrl) throw new ReplayArgumentError('--database-url: that is the production database; name a scratch one');
  await replayInto(rt, url, parseBound('--from', values.from), parseBound('--to', values.to), { progress: true });
}

export async function replayInto(rt: Runtime, databaseUrl: string, from?: Bound, to?: Bound, opts: { progress?: boolean } = {}): Promise<Record<string, number>> {
  const pool = createPool(databaseUrl, 2);
  const target = createDb(pool);
  try {
    try {
      await migrateDatabase(target);
    } catch (err) {
      throw new ReplayArgumentError(`--database-url: cannot prepare ${new URL(databaseUrl).pathname.slice(1)}: ${(err as Error).message}`);
    }
    const keys = new PersonKeys(target, requireMasterKey(rt.config));
    const applied: Record<string, number> = {};
    for (const projection of PROJECTIONS.values()) applied[projection.name] = await projectRange(rt, target, projection, keys, from, to, opts.progress);
    return applied;
  } finally {
    await target.destroy();
  }
}

async function projectRange(rt: Runtime, target: Kysely<Database>, projection: Projection, keys: PersonKeys, from?: Bound, to?: Bound, progress?: boolean): Promise<number> {
  const stream = rt.names.stream(projection.context);
  const range = await resolveRange(rt.nats, stream, from, to);
  const bar = progress ? new Progress(`into ${projection.name}`, Math.max(0, range.to - range.from + 1), 'positions') : undefined;
  let batch: StoredEvent[] = [];
  let lastSeq = 0;
  let count = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const events = batch;
    batch = [];
    await target.transaction().execute(async (trx) => {
      await projection.apply(trx, events, { keys });
      await trx
        .insertInto('projector_checkpoints')
        .values({ projector: projection.name, stream, seq: lastSeq, event_id: events.at(-1)?.id ?? null })
        .onConflict((oc) => oc.column('projector').doUpdateSet({ seq: lastSeq, event_id: events.at(-1)?.id ?? null }))
        .execute();
    });
    count += events.length;
  };
  await readRange(
    rt.nats,
    range,
    async (msg) => {
      batch.push(...decodeMessage(rt.registry, rawMessageOf(msg)));
      lastSeq = msg.seq;
      bar?.set(msg.seq - range.from + 1);
      if (batch.length >= BATCH) await flush();
    },
    { filter: projection.filter(rt.names) },
  );
  await flush();
  bar?.finish(`${count} events applied`);
  return count;
}
