/**
 * Writes answer with the stream sequence of their event; a read that sends it
 * back in `x-min-sequence` waits until the read model has applied it, so a
 * client always sees its own writes even though projection is asynchronous.
 */
import type { FastifyReply } from 'fastify';
import { HttpError } from './errors.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';

export const SEQUENCE_HEADER = 'x-relaygrid-sequence';
export const MIN_SEQUENCE_HEADER = 'x-min-sequence';

type WatcherDeps = { watcher: CheckpointWatcher; readTimeoutMs?: number };

/** Waits until `projector` has applied `seq`; 503 read_model_behind when it does not within the read timeout. */
export async function waitForSequence(deps: WatcherDeps, projector: string, seq: number): Promise<void> {
  const reached = await deps.watcher.waitFor(projector, seq, deps.readTimeoutMs ?? 5000);
  if (!reached) {
    throw new HttpError(503, 'read_model_behind', `the ${projector} read model has not reached sequence ${seq} yet; retry`);
  }
}

/** A read's `x-min-sequence`, when it sent one: 400 for anything but a whole number, then waitForSequence. */
export async function waitForProjection(deps: WatcherDeps, projector: string, header: string | string[] | undefined): Promise<void> {
  if (header === undefined) return;
  const raw = Array.isArray(header) ? header[0] : header;
  if (!raw || !/^\d{1,15}$/.test(raw)) {
    throw new HttpError(400, 'invalid_header', `${MIN_SEQUENCE_HEADER}: must be a non-negative whole number`, MIN_SEQUENCE_HEADER);
  }
  await waitForSequence(deps, projector, Number(raw));
}

/**
 * Answers a write once `projector` has applied `seq`, so a client that got
 * its answer can use the change at once (connect a device it just registered
 * to the gateway, say). If the read model is too slow the write still stands:
 * 503 read_model_behind, and the client reads again with x-min-sequence.
 */
export async function answerWritten(
  deps: WatcherDeps,
  reply: FastifyReply,
  projector: string,
  seq: number,
  status: number,
  /** The answer, or how to read it from the read model once the write is in. */
  payload: Record<string, unknown> | (() => Promise<Record<string, unknown>>) = {},
): Promise<FastifyReply> {
  await waitForSequence(deps, projector, seq);
  const body = typeof payload === 'function' ? await payload() : payload;
  return reply.status(status).header(SEQUENCE_HEADER, String(seq)).send({ ...body, sequence: seq });
}
