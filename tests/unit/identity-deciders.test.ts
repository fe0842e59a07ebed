/** Given/when/then for the identity aggregates: user, session, API key, email reservation. */
import { describe, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { apiKeyDecider } from '../../producers/identity/api-key.decider.js';
import { emailReservationDecider } from '../../producers/identity/email-reservation.decider.js';
import { sessionDecider } from '../../producers/identity/session.decider.js';
import { userDecider, type UserEventKey, type VerificationTicket } from '../../producers/identity/user.decider.js';
import { given } from '../support/decider-spec.js';

const at = new Date('2026-11-24T10:00:00Z');
const later = new Date('2026-11-24T11:00:00Z');
const sealed = (text: string) => Buffer.from(`sealed:${text}`);
const ticket: VerificationTicket = { tokenHash: 'h1', tokenSealed: sealed('t'), emailSealed: sealed('e'), expiresAt: new Date('2026-11-26T10:00:00Z') };

const registered: DomainEvent<UserEventKey> = {
  type: 'identity.UserRegistered',
  data: { userId: 'u1', emailHash: 'eh', emailSealed: sealed('a@x'), displayNameSealed: null, passwordHashSealed: sealed('pw'), roles: ['client'], registeredAt: at },
};
const verificationRequested: DomainEvent<UserEventKey> = { type: 'identity.EmailVerificationRequested', data: { userId: 'u1', ...ticket, requestedAt: at } };
const suspended: DomainEvent<UserEventKey> = { type: 'identity.UserSuspended', data: { userId: 'u1', reason: 'spam', suspendedAt: at } };
const forgotten: DomainEvent<UserEventKey> = { type: 'identity.UserForgotten', data: { userId: 'u1', forgottenAt: at } };

describe('user', () => {
  it('registration issues the account, proxy credentials and a verification request in one decision', () => {
    given(userDecider)
      .when({
        type: 'RegisterUser',
        userId: 'u1',
        emailHash: 'eh',
        emailSealed: sealed('a@x'),
        displayNameSealed: null,
        passwordHashSealed: sealed('pw'),
        roles: ['client'],
        credentialsSealed: sealed('creds'),
        verification: ticket,
        at,
      })
      .then([
        registered,
        { type: 'identity.ProxyCredentialsIssued', data: { userId: 'u1', generation: 1, reason: 'registration', credentialsSealed: sealed('creds'), issuedAt: at } },
        verificationRequested,
      ]);
  });

  it('commands on an unknown user fail with user_not_found', () => {
    given(userDecider).when({ type: 'Suspend', reason: 'x', at }).thenError('user_not_found');
  });

  it('verifying the email needs the latest token, before it expires; verifying twice is a no-op', () => {
    given(userDecider, [registered, verificationRequested]).when({ type: 'VerifyEmail', tokenHash: 'other', at }).thenError('invalid_token');
    given(userDecider, [registered, verificationRequested]).when({ type: 'VerifyEmail', tokenHash: 'h1', at: new Date('2026-11-27T00:00:00Z') }).thenError('token_expired');
    given(userDecider, [registered, verificationRequested]).when({ type: 'VerifyEmail', tokenHash: 'h1', at: later }).then([{ type: 'identity.EmailVerified', data: { userId: 'u1', verifiedAt: later } }]);
    given(userDecider, [registered, verificationRequested, { type: 'identity.EmailVerified', data: { userId: 'u1', verifiedAt: later } }])
      .when({ type: 'VerifyEmail', tokenHash: 'h1', at: later })
      .then([]);
  });

  it('roles: granting a known role once, revoking only what is held, refusing unknown roles', () => {
    given(userDecider, [registered]).when({ type: 'GrantRole', role: 'operator', at }).then([{ type: 'identity.RoleGranted', data: { userId: 'u1', role: 'operator', grantedAt: at } }]);
    given(userDecider, [registered]).when({ type: 'GrantRole', role: 'client', at }).then([]);
    given(userDecider, [registered]).when({ type: 'GrantRole', role: 'root', at }).thenError('unknown_role');
    given(userDecider, [registered]).when({ type: 'RevokeRole', role: 'admin', at }).then([]);
    given(userDecider, [registered]).when({ type: 'RevokeRole', role: 'client', at }).then([{ type: 'identity.RoleRevoked', data: { userId: 'u1', role: 'client', revokedAt: at } }]);
  });

  it('suspension: idempotent, blocks new proxy credentials, reinstatement restores', () => {
    given(userDecider, [registered]).when({ type: 'Suspend', reason: 'spam', at }).then([suspended]);
    given(userDecider, [registered, suspended]).when({ type: 'Suspend', reason: 'again', at }).then([]);
    given(userDecider, [registered, suspended]).when({ type: 'RotateProxyCredentials', credentialsSealed: sealed('c2'), at }).thenError('user_suspended');
    given(userDecider, [registered, suspended]).when({ type: 'Reinstate', at }).then([{ type: 'identity.UserReinstated', data: { userId: 'u1', reinstatedAt: at } }]);
    given(userDecider, [registered]).when({ type: 'Reinstate', at }).then([]);
  });

  it('rotation counts generations', () => {
    const issued: DomainEvent<UserEventKey> = { type: 'identity.ProxyCredentialsIssued', data: { userId: 'u1', generation: 1, reason: 'registration', credentialsSealed: sealed('c1'), issuedAt: at } };
    given(userDecider, [registered, issued])
      .when({ type: 'RotateProxyCredentials', credentialsSealed: sealed('c2'), at: later })
      .then([{ type: 'identity.ProxyCredentialsIssued', data: { userId: 'u1', generation: 2, reason: 'rotation', credentialsSealed: sealed('c2'), issuedAt: later } }]);
  });

  it('a forgotten user accepts nothing but another forget, which changes nothing', () => {
    given(userDecider, [registered]).when({ type: 'Forget', at }).then([forgotten]);
    given(userDecider, [registered, forgotten]).when({ type: 'Forget', at }).then([]);
    given(userDecider, [registered, forgotten]).when({ type: 'ChangePrivacy', presence: 'nobody', readReceipts: 'nobody', at }).thenError('user_forgotten');
    given(userDecider, [registered, forgotten]).when({ type: 'GrantRole', role: 'admin', at }).thenError('user_forgotten');
  });

  it('the last active admin: not suspended, not demoted, not forgotten; nobody suspends themselves', () => {
    const admin: DomainEvent<UserEventKey> = { type: 'identity.RoleGranted', data: { userId: 'u1', role: 'admin', grantedAt: at } };
    const revoked: DomainEvent<UserEventKey> = { type: 'identity.RoleRevoked', data: { userId: 'u1', role: 'admin', revokedAt: at } };
    given(userDecider, [registered, admin]).when({ type: 'Suspend', reason: 'x', otherActiveAdmins: 0, at }).thenError('last_admin');
    given(userDecider, [registered, admin]).when({ type: 'RevokeRole', role: 'admin', otherActiveAdmins: 0, at }).thenError('last_admin');
    given(userDecider, [registered, admin]).when({ type: 'Forget', otherActiveAdmins: 0, at }).thenError('last_admin');
    // Uncounted counts as none: a caller that forgot to count cannot remove an admin.
    given(userDecider, [registered, admin]).when({ type: 'RevokeRole', role: 'admin', at }).thenError('last_admin');
    given(userDecider, [registered, admin]).when({ type: 'Suspend', reason: 'x', by: 'u1', otherActiveAdmins: 3, at }).thenError('cannot_suspend_self');
    given(userDecider, [registered]).when({ type: 'Suspend', reason: 'x', by: 'u1', at }).thenError('cannot_suspend_self');

    given(userDecider, [registered, admin]).when({ type: 'RevokeRole', role: 'admin', otherActiveAdmins: 1, at }).then([revoked]);
    given(userDecider, [registered, admin]).when({ type: 'Suspend', reason: 'spam', by: 'u2', otherActiveAdmins: 1, at }).then([suspended]);
    given(userDecider, [registered, admin]).when({ type: 'Forget', otherActiveAdmins: 1, at }).then([forgotten]);
    // A suspended admin is not an active one: taking the role away leaves the active admins as they were.
    given(userDecider, [registered, admin, suspended]).when({ type: 'RevokeRole', role: 'admin', otherActiveAdmins: 0, at }).then([revoked]);
    given(userDecider, [registered, admin]).when({ type: 'RevokeRole', role: 'client', at }).then([{ type: 'identity.RoleRevoked', data: { userId: 'u1', role: 'client', revokedAt: at } }]);
  });

  it('a registration that never completed is closed once; the closed id can never register', () => {
    const abandoned: DomainEvent<UserEventKey> = { type: 'identity.UserRegistrationAbandoned', data: { userId: 'u1', emailHash: 'eh', abandonedAt: at } };
    given(userDecider).when({ type: 'AbandonRegistration', userId: 'u1', emailHash: 'eh', at }).then([abandoned]);
    given(userDecider, [abandoned]).when({ type: 'AbandonRegistration', userId: 'u1', emailHash: 'eh', at }).then([]);
    given(userDecider, [registered]).when({ type: 'AbandonRegistration', userId: 'u1', emailHash: 'eh', at }).then([]);
    given(userDecider, [abandoned])
      .when({ type: 'RegisterUser', userId: 'u1', emailHash: 'eh', emailSealed: sealed('a@x'), displayNameSealed: null, passwordHashSealed: null, roles: ['client'], credentialsSealed: sealed('c'), verification: ticket, at })
      .thenError('email_taken');
    given(userDecider, [abandoned]).when({ type: 'GrantRole', role: 'admin', at }).thenError('user_not_found');
  });

  it('privacy: only a change is an event', () => {
    given(userDecider, [registered]).when({ type: 'ChangePrivacy', presence: 'contacts', readReceipts: 'contacts', at }).then([]);
    given(userDecider, [registered])
      .when({ type: 'ChangePrivacy', presence: 'nobody', readReceipts: 'everyone', at })
      .then([{ type: 'identity.PrivacySettingsChanged', data: { userId: 'u1', presence: 'nobody', readReceipts: 'everyone', changedAt: at } }]);
  });

  it('TOTP: enabled once; each recovery code spends once', () => {
    const enabled: DomainEvent<UserEventKey> = { type: 'identity.TotpEnabled', data: { userId: 'u1', secretSealed: sealed('s'), recoveryCodeHashes: ['r0', 'r1'], enabledAt: at } };
    given(userDecider, [registered, enabled]).when({ type: 'EnableTotp', secretSealed: sealed('s2'), recoveryCodeHashes: [], at }).thenError('totp_already_enabled');
    given(userDecider, [registered, enabled]).when({ type: 'UseRecoveryCode', index: 1, at }).then([{ type: 'identity.RecoveryCodeUsed', data: { userId: 'u1', index: 1, usedAt: at } }]);
    given(userDecider, [registered, enabled, { type: 'identity.RecoveryCodeUsed', data: { userId: 'u1', index: 1, usedAt: at } }])
      .when({ type: 'UseRecoveryCode', index: 1, at })
      .thenError('invalid_recovery_code');
    given(userDecider, [registered]).when({ type: 'UseRecoveryCode', index: 0, at }).thenError('invalid_recovery_code');
  });

  it('changing to the same address is a no-op; a new one needs verifying again', () => {
    given(userDecider, [registered]).when({ type: 'ChangeEmail', emailHash: 'eh', emailSealed: sealed('a@x'), verification: ticket, at }).then([]);
    given(userDecider, [registered])
      .when({ type: 'ChangeEmail', emailHash: 'eh2', emailSealed: sealed('b@x'), verification: ticket, at })
      .then([{ type: 'identity.EmailChanged', data: { userId: 'u1', emailSealed: sealed('b@x'), emailHash: 'eh2', changedAt: at } }, verificationRequested]);
  });
});

describe('session', () => {
  const started = { type: 'identity.SessionStarted', data: { sessionId: 's1', userId: 'u1', method: 'password', detailsSealed: sealed('d'), startedAt: at } } as const;
  it('starts once and ends once', () => {
    given(sessionDecider).when({ type: 'StartSession', sessionId: 's1', userId: 'u1', method: 'password', detailsSealed: sealed('d'), at }).then([started]);
    given(sessionDecider, [started]).when({ type: 'StartSession', sessionId: 's1', userId: 'u1', method: 'password', detailsSealed: sealed('d'), at }).thenError('session_exists');
    given(sessionDecider, [started]).when({ type: 'EndSession', sessionId: 's1', reason: 'logout', at }).then([{ type: 'identity.SessionEnded', data: { sessionId: 's1', userId: 'u1', reason: 'logout', endedAt: at } }]);
    given(sessionDecider, [started, { type: 'identity.SessionEnded', data: { sessionId: 's1', userId: 'u1', reason: 'logout', endedAt: at } }])
      .when({ type: 'EndSession', sessionId: 's1', reason: 'revoked', at })
      .then([]);
    given(sessionDecider).when({ type: 'EndSession', sessionId: 's1', reason: 'logout', at }).thenError('session_not_found');
  });
});

describe('API key', () => {
  const issued: DomainEvent<'identity.ApiKeyIssued'> = { type: 'identity.ApiKeyIssued', data: { keyId: 'k1', userId: 'u1', name: 'job', roles: ['client'], secretHash: 'sh', issuedAt: at } };
  it('carries only roles its owner holds', () => {
    given(apiKeyDecider)
      .when({ type: 'IssueApiKey', keyId: 'k1', userId: 'u1', name: 'job', roles: ['admin'], holderRoles: ['client'], secretHash: 'sh', at })
      .thenError('role_not_held');
    given(apiKeyDecider).when({ type: 'IssueApiKey', keyId: 'k1', userId: 'u1', name: 'job', roles: ['client'], holderRoles: ['client'], secretHash: 'sh', at }).then([issued]);
  });
  it('is revoked by its owner or an admin; anyone else learns nothing', () => {
    given(apiKeyDecider, [issued]).when({ type: 'RevokeApiKey', keyId: 'k1', requesterId: 'u2', asAdmin: false, at }).thenError('api_key_not_found');
    given(apiKeyDecider, [issued]).when({ type: 'RevokeApiKey', keyId: 'k1', requesterId: 'u2', asAdmin: true, at }).then([{ type: 'identity.ApiKeyRevoked', data: { keyId: 'k1', userId: 'u1', revokedAt: at } }]);
    given(apiKeyDecider).when({ type: 'RevokeApiKey', keyId: 'k1', requesterId: 'u1', asAdmin: false, at }).thenError('api_key_not_found');
  });
});

describe('email reservation', () => {
  const reserved = { type: 'identity.EmailReserved', data: { emailHash: 'eh', userId: 'u1', reservedAt: at } } as const;
  it('moves only from the holder the caller found stale, so a second takeover cannot displace the first', () => {
    given(emailReservationDecider, [reserved])
      .when({ type: 'ReserveEmail', emailHash: 'eh', userId: 'u2', at: later, takeOverFrom: 'u1' })
      .then([{ type: 'identity.EmailReserved', data: { emailHash: 'eh', userId: 'u2', reservedAt: later } }]);
    given(emailReservationDecider, [reserved, { type: 'identity.EmailReserved', data: { emailHash: 'eh', userId: 'u2', reservedAt: later } }])
      .when({ type: 'ReserveEmail', emailHash: 'eh', userId: 'u3', at: later, takeOverFrom: 'u1' })
      .thenError('email_taken');
  });
  it('only the holder releases; a released address can be claimed again', () => {
    given(emailReservationDecider, [reserved]).when({ type: 'ReleaseEmail', emailHash: 'eh', userId: 'u2', at }).then([]);
    given(emailReservationDecider, [reserved]).when({ type: 'ReleaseEmail', emailHash: 'eh', userId: 'u1', at }).then([{ type: 'identity.EmailReleased', data: { emailHash: 'eh', userId: 'u1', releasedAt: at } }]);
    given(emailReservationDecider, [reserved, { type: 'identity.EmailReleased', data: { emailHash: 'eh', userId: 'u1', releasedAt: at } }])
      .when({ type: 'ReserveEmail', emailHash: 'eh', userId: 'u3', at: later })
      .then([{ type: 'identity.EmailReserved', data: { emailHash: 'eh', userId: 'u3', reservedAt: later } }]);
  });
});
