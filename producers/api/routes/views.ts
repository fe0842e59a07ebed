/** How users, sessions and API keys look in answers, wherever a route shows them. */
import type { SessionInfo } from '../../identity/tokens/refresh-sessions.js';
import type { ApiKeyTable, UserTable } from '../../../schema/database.js';
import { USER_STATUSES } from '../../../projectors/identity/users.queries.js';
import { BOOLEAN, nullable, SEQUENCE, shape, STRING, STRINGS, TIME } from '../contract.js';
import { UUID } from './schemas.js';

export function userView(user: UserTable) {
  return {
    id: user.id,
    email: user.email,
    displayName: user.display_name,
    status: user.status,
    emailVerified: user.email_verified,
    roles: user.roles,
    totpEnabled: user.totp_enabled,
    suspendedReason: user.suspended_reason,
    registeredAt: user.registered_at.toISOString(),
    sequence: user.last_seq,
  };
}

export function sessionView(session: SessionInfo) {
  return {
    id: session.id,
    device: session.device,
    ip: session.ip,
    createdAt: new Date(session.createdAt).toISOString(),
    lastSeenAt: new Date(session.lastSeenAt).toISOString(),
  };
}

export function apiKeyView(key: Pick<ApiKeyTable, 'id' | 'name' | 'roles' | 'issued_at' | 'revoked_at'>, lastUsedAt?: number | null) {
  return {
    id: key.id,
    name: key.name,
    roles: key.roles,
    issuedAt: key.issued_at.toISOString(),
    revokedAt: key.revoked_at?.toISOString() ?? null,
    ...(lastUsedAt === undefined ? {} : { lastUsedAt: lastUsedAt ? new Date(lastUsedAt).toISOString() : null }),
  };
}

/** The schemas of these views, for the routes' response declarations. */
export const USER_PROPERTIES = {
  id: UUID,
  email: nullable(STRING),
  displayName: nullable(STRING),
  status: { type: 'string', enum: [...USER_STATUSES] },
  emailVerified: BOOLEAN,
  roles: STRINGS,
  totpEnabled: BOOLEAN,
  suspendedReason: nullable(STRING),
  registeredAt: TIME,
  sequence: SEQUENCE,
};
export const USER = shape(USER_PROPERTIES);
export const SESSION_PROPERTIES = { id: STRING, device: STRING, ip: STRING, createdAt: TIME, lastSeenAt: TIME };
export const SESSION = shape(SESSION_PROPERTIES);
/** `lastUsedAt` only where the route looks it up (your own keys). */
export const API_KEY = shape({ id: UUID, name: STRING, roles: STRINGS, issuedAt: TIME, revokedAt: nullable(TIME), lastUsedAt: nullable(TIME) }, ['lastUsedAt']);
