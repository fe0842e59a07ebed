/**
 * Writes answer with the stream sequence of their event; a read that sends it
 * back in `x-min-sequence` waits until the read model has applied it, so a
 * client always sees its own writes even though projection is asynchronous.
 */
import { HttpError } from './errors.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';

export const SEQUENCE_HEADER = 'x-relaygrid-sequence';
export const MIN_SEQUENCE_HEADER = 'x-min-sequence';

export async function waitForProjection(
  deps: { watcher: CheckpointWatcher; readTimeoutMs?: number },
  projector: string,
  header: string | string[] | undefined,
): Promise<void> {
  if (header === undefined) return;
  const raw = Array.isArray(header) ? header[0] : header;
  if (!raw || !/^\d{1,15}$/.test(raw)) {
    throw new HttpError(400, 'invalid_header', `${MIN_SEQUENCE_HEADER}: must be a non-negative whole number`, MIN_SEQUENCE_HEADER);
  }
  const reached = await deps.watcher.waitFor(projector, Number(raw), deps.readTimeoutMs ?? 5000);
  if (!reached) {
    throw new HttpError(503, 'read_model_behind', `the ${projector} read model has not reached sequence ${raw} yet; retry`);
  }
}
