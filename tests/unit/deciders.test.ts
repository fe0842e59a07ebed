import { describe, it } from 'vitest';
import { emailReservationDecider } from '../../producers/identity/email-reservation.decider.js';
import { userDecider } from '../../producers/identity/user.decider.js';
import { given } from '../support/decider-spec.js';

const at = new Date('2026-11-23T12:00:00Z');
const registered = { type: 'identity.UserRegistered', data: { userId: 'u1', email: 'a@example.org', displayName: null, registeredAt: at } } as const;

describe('user decider', () => {
  it('registers a new user', () => {
    given(userDecider)
      .when({ type: 'RegisterUser', userId: 'u1', email: 'a@example.org', displayName: null, at })
      .then([registered]);
  });

  it('refuses to register the same user twice', () => {
    given(userDecider, [registered])
      .when({ type: 'RegisterUser', userId: 'u1', email: 'a@example.org', displayName: null, at })
      .thenError('user_exists');
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
      .when({ type: 'ReserveEmail', emailHash: 'h', userId: 'u2', at, ownerAbandoned: true })
      .then([{ type: 'identity.EmailReserved', data: { emailHash: 'h', userId: 'u2', reservedAt: at } }]);
  });
});
