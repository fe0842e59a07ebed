/**
 * The operator's way past an event a projector cannot apply: recorded, with
 * who and why, and the checkpoint moved past it in the same transaction. A
 * running projector that stopped on that event notices and resumes.
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import { CliError } from '../../infra/cli/cli-error.js';

export class SkipRefusedError extends CliError {
  readonly code = 'skip_refused';
}

export interface SkipRequest {
  projector: string;
  seq: number;
  actor: string;
  reason: string;
}

/** What can be refused without the database: the CLI checks it before it connects. */
export function checkSkipRequest(request: SkipRequest): SkipRequest {
  if (!request.reason.trim()) throw new SkipRefusedError('--reason: say why the event may be skipped');
  return request;
}

export async function skipFailedEvent(db: Kysely<Database>, request: SkipRequest): Promise<void> {
  checkSkipRequest(request);
  await db.transaction().execute(async (trx) => {
    const failure = await trx
      .updateTable('projector_failures')
      .set({ resolved_at: sql<Date>`now()`, resolution: `skipped by ${request.actor}: ${request.reason}` })
      .where('projector', '=', request.projector)
      .where('seq', '=', request.seq)
      .where('resolved_at', 'is', null)
      .returning('id')
      .executeTakeFirst();
    if (!failure) {
      throw new SkipRefusedError(`--seq: projector ${request.projector} has no open failure at sequence ${request.seq}`);
    }
    await trx
      .updateTable('projector_checkpoints')
      .set({ seq: request.seq, updated_at: sql<Date>`now()` })
      .where('projector', '=', request.projector)
      .where('seq', '<', request.seq)
      .execute();
  });
}

/** True while the projector has a failure nobody resolved. */
export async function hasOpenFailure(db: Kysely<Database>, projector: string): Promise<boolean> {
  const row = await db.selectFrom('projector_failures').select('id').where('projector', '=', projector).where('resolved_at', 'is', null).executeTakeFirst();
  return row !== undefined;
}
