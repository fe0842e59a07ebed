import { describe, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { emailReservationDecider } from '../../producers/identity/email-reservation.decider.js';
import { userDecider, type UserCommand, type UserEventKey, type VerificationTicket } from '../../producers/identity/user.decider.js';
import { given } from '../support/decider-spec.js';

const at = new Date('2026-11-23T12:00:00Z');
// The decider is pure: it carries sealed bytes as they come, so stand-ins do.
const sealed = (text: string) => Buffer.from(`sealed:${text}`);
const ticket: VerificationTicket = { tokenHash: 't', tokenSealed: sealed('token'), emailSealed: sealed('a@example.org'), expiresAt: new Date('2026-11-25T12:00:00Z') };
const register: UserCommand = {
  type: 'RegisterUser',
  userId: 'u1',
  emailHash: 'h',
  emailSealed: sealed('a@example.org'),
  displayNameSealed: null,
  passwordHashSealed: sealed('pw'),
  roles: ['client'],
  credentialsSealed: sealed('creds'),
  verification: ticket,
  at,
};
const registered: DomainEvent<UserEventKey> = {
  type: 'identity.UserRegistered',
  data: { userId: 'u1', emailHash: 'h', emailSealed: sealed('a@example.org'), displayNameSealed: null, passwordHashSealed: sealed('pw'), roles: ['client'], registeredAt: at },
};

describe('user decider', () => {
  it('registers a new user', () => {
    given(userDecider)
      .when(register)
      .then([
        registered,
        { type: 'identity.ProxyCredentialsIssued', data: { userId: 'u1', generation: 1, reason: 'registration', credentialsSealed: sealed('creds'), issuedAt: at } },
        { type: 'identity.EmailVerificationRequested', data: { userId: 'u1', ...ticket, requestedAt: at } },
      ]);
  });

  it('refuses to register the same user twice', () => {
    given(userDecider, [registered]).when(register).thenError('user_exists');
  });
});

describe('email reservation decider', () => {
  const reserved = { type: 'identity.EmailReserved', data: { emailHash: 'h', userId: 'u1', reservedAt: at } } as const;

  it('reserves a free address', () => {
    given(emailReservationDecider).when({ type: 'ReserveEmail', emailHash: 'h', userId: 'u1', at }).then([reserved]);
  });

  it('is idempotent for the same owner', () => {
    given(emailReservationDecider, [reserved]).when({ type: 'ReserveEmail', emailHash: 'h', userId: 'u1', at }).then([]);
  });

  it('refuses another owner', () => {
    given(emailReservationDecider, [reserved]).when({ type: 'ReserveEmail', emailHash: 'h', userId: 'u2', at }).thenError('email_taken');
  });

  it('lets a new owner take over an abandoned reservation', () => {
    given(emailReservationDecider, [reserved])
      .when({ type: 'ReserveEmail', emailHash: 'h', userId: 'u2', at, takeOverFrom: 'u1' })
      .then([{ type: 'identity.EmailReserved', data: { emailHash: 'h', userId: 'u2', reservedAt: at } }]);
  });
});
