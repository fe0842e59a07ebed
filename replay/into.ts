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
import { parseBound, readRange, ReplayArgumentError, resolveRange, type Bound, type SeqRange } from './range.js';
import { advanceCheckpoint, readCheckpoint } from '../projectors/runtime/checkpoints.js';

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
    // Projections that read the same subjects share one pass; each stream's range is resolved once,
    // so every projection of the copy stops at the same point of the log.
    const ranges = new Map<string, Promise<SeqRange>>();
    const groups = new Map<string, Projection[]>();
    for (const projection of PROJECTIONS.values()) {
      const stream = rt.names.stream(projection.context);
      if (!ranges.has(stream)) ranges.set(stream, resolveRange(rt, stream, from, to));
      const key = `${stream} ${projection.filter(rt.names)}`;
      groups.set(key, [...(groups.get(key) ?? []), projection]);
    }
    for (const projections of groups.values()) {
      const range = await ranges.get(rt.names.stream(projections[0]!.context))!;
      const count = await projectRange(rt, target, projections, keys, range, opts.progress);
      for (const projection of projections) applied[projection.name] = count;
    }
    return applied;
  } finally {
    await target.destroy();
  }
}

/** Reads the range once and applies every projection of the group to each batch, in one transaction with their checkpoints. */
async function projectRange(rt: Runtime, target: Kysely<Database>, projections: Projection[], keys: PersonKeys, range: SeqRange, progress?: boolean): Promise<number> {
  const names = projections.map((p) => p.name).join(', ');
  const bar = progress ? new Progress(`into ${names}`, Math.max(0, range.to - range.from + 1), 'positions') : undefined;
  const checkpoints = new Map<string, number>();
  for (const p of projections) checkpoints.set(p.name, await readCheckpoint(target, p.name, range.stream));
  let batch: StoredEvent[] = [];
  let lastSeq = 0;
  let count = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const events = batch;
    batch = [];
    await target.transaction().execute(async (trx) => {
      for (const projection of projections) {
        await projection.apply(trx, events, { keys });
        await advanceCheckpoint(trx, projection.name, checkpoints.get(projection.name)!, lastSeq, events.at(-1)?.id ?? null);
      }
    });
    for (const p of projections) checkpoints.set(p.name, lastSeq);
    count += events.length;
  };
  await readRange(
    rt.nats,
    range,
    (msg) => {
      batch.push(...decodeMessage(rt.registry, rawMessageOf(msg)));
      lastSeq = msg.seq;
      bar?.set(msg.seq - range.from + 1);
      if (batch.length >= BATCH) return flush();
    },
    { filter: projections[0]!.filter(rt.names) },
  );
  await flush();
  bar?.finish(`${count} events applied`);
  return count;
}
