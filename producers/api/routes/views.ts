/** How users, sessions and API keys look in answers, wherever a route shows them. */
import type { SessionInfo } from '../../identity/tokens/refresh-sessions.js';
import type { ApiKeyTable, UserTable } from '../../../schema/database.js';

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
