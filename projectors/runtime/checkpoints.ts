/**
 * Checkpoints live in the same transaction as the rows they describe. The
 * update is fenced on the sequence we started from: if another instance moved
 * it, this transaction fails instead of applying a batch twice.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../schema/database.js';

export const CHECKPOINT_CHANNEL = 'relaygrid_checkpoint';

export class CheckpointFencedError extends Error {
  readonly code = 'checkpoint_fenced';
}

export async function readCheckpoint(db: Kysely<Database>, projector: string, stream: string): Promise<number> {
  await db
    .insertInto('projector_checkpoints')
    .values({ projector, stream, seq: 0, event_id: null })
    .onConflict((oc) => oc.column('projector').doNothing())
    .execute();
  const row = await db.selectFrom('projector_checkpoints').select(['seq', 'stream']).where('projector', '=', projector).executeTakeFirstOrThrow();
  if (row.stream !== stream) throw new Error(`projector ${projector} has a checkpoint on stream ${row.stream}, not ${stream}`);
  return row.seq;
}

export async function advanceCheckpoint(
  trx: Transaction<Database>,
  projector: string,
  from: number,
  to: number,
  eventId: string | null,
): Promise<void> {
  const result = await trx
    .updateTable('projector_checkpoints')
    .set({ seq: to, event_id: eventId, updated_at: sql<Date>`now()` })
    .where('projector', '=', projector)
    .where('seq', '=', from)
    .executeTakeFirst();
  if (result.numUpdatedRows !== 1n) {
    throw new CheckpointFencedError(`checkpoint of ${projector} is no longer at ${from}: another instance is applying`);
  }
  // Delivered on commit: read-your-writes waiters wake without polling.
  await sql`select pg_notify(${CHECKPOINT_CHANNEL}, ${`${projector}:${to}`})`.execute(trx);
}
