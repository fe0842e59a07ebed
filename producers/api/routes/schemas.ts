/** JSON schemas shared by routes: ids, emails, passwords, and the error body. */
import { PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH } from '../../identity/passwords.js';
import { VISIBILITIES } from '../../identity/privacy.js';
import { ROLES } from '../../identity/roles.js';

export const UUID = { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' } as const;
export const EMAIL = { type: 'string', format: 'email', maxLength: 254 } as const;
export const PASSWORD = { type: 'string', minLength: PASSWORD_MIN_LENGTH, maxLength: PASSWORD_MAX_LENGTH } as const;
export const ROLE = { type: 'string', enum: [...ROLES] } as const;
export const VISIBILITY = { type: 'string', enum: [...VISIBILITIES] } as const;

export const idParams = { type: 'object', required: ['id'], properties: { id: UUID } } as const;

export function body<P extends Record<string, unknown>, R extends readonly (keyof P & string)[]>(properties: P, required: R) {
  return { type: 'object', additionalProperties: false, required, properties } as const;
}
