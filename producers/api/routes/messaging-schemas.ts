/** What the messaging routes share: who may call them and the key shapes of their bodies. */
import type { Role } from '../../identity/roles.js';
import { MAX_PREKEYS_PER_UPLOAD } from '../../messaging/limits.js';
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
