/**
 * What the messaging routes share: who may call them, the key shapes of their
 * bodies, and how a write answers only once its read model has the change.
 */
import type { FastifyReply } from 'fastify';
import type { Role } from '../../identity/roles.js';
import { MAX_PREKEYS_PER_UPLOAD } from '../../messaging/limits.js';
import { SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import type { ApiDeps } from '../app.js';
import { body, UUID } from './schemas.js';

/** Messenger users: clients (admins pass every role check). */
export const MESSENGER: readonly Role[] = ['client'];

/** Base64 is checked exactly by producers/messaging/key-shapes.ts; the schema only keeps junk small. */
export const KEY_STRING = { type: 'string', minLength: 1, maxLength: 128 } as const;
/** Avro int: what the events carry. */
const KEY_ID = { type: 'integer', minimum: 0, maximum: 2_147_483_647 } as const;

export const SIGNED_PREKEY = body({ id: KEY_ID, publicKey: KEY_STRING, signature: KEY_STRING }, ['id', 'publicKey', 'signature']);
export const ONE_TIME_PREKEYS = { type: 'array', maxItems: MAX_PREKEYS_PER_UPLOAD, items: body({ id: KEY_ID, publicKey: KEY_STRING }, ['id', 'publicKey']) } as const;
export const DEVICE_NAME = { type: 'string', minLength: 1, maxLength: 100 } as const;
export const GROUP_NAME = { type: 'string', minLength: 1, maxLength: 100 } as const;

export const userParams = { type: 'object', required: ['userId'], properties: { userId: UUID } } as const;
export const memberParams = { type: 'object', required: ['id', 'userId'], properties: { id: UUID, userId: UUID } } as const;

/**
 * Answers a write once `projector` has applied `seq`, so a client that got
 * its answer can use the change at once (connect a device it just registered
 * to the gateway, say). If the read model is too slow the write still stands:
 * 503 read_model_behind, and the client reads again with x-min-sequence.
 */
export async function answerWritten(deps: ApiDeps, reply: FastifyReply, projector: string, seq: number, status: number, payload: Record<string, unknown> = {}): Promise<FastifyReply> {
  await waitForProjection(deps, projector, String(seq));
  return reply.status(status).header(SEQUENCE_HEADER, String(seq)).send({ ...payload, sequence: seq });
}
