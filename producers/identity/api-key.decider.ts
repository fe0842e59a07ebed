/**
 * An API key (`<ns>.evt.identity.apikey.<id>`): issued once to a user, scoped to
 * roles the user holds, revocable. Only the hash of its secret is ever stored.
 */
import { DomainError, type Decider } from '../decider.js';
import type { Role } from './roles.js';

export interface ApiKeyState {
  userId: string | null;
  roles: Role[];
  secretHash: string | null;
  revoked: boolean;
}

export type ApiKeyCommand =
  | { type: 'IssueApiKey'; keyId: string; userId: string; name: string; roles: readonly Role[]; holderRoles: readonly Role[]; secretHash: string; at: Date }
  | { type: 'RevokeApiKey'; keyId: string; requesterId: string; asAdmin: boolean; at: Date };

type K = 'identity.ApiKeyIssued' | 'identity.ApiKeyRevoked';

export const apiKeyDecider: Decider<ApiKeyState, ApiKeyCommand, K> = {
  initialState: { userId: null, roles: [], secretHash: null, revoked: false },
  decide(command, state) {
    switch (command.type) {
      case 'IssueApiKey': {
        if (state.userId) throw new DomainError('api_key_exists', `API key ${command.keyId} already exists`);
        const beyond = command.roles.filter((r) => !command.holderRoles.includes(r));
        if (beyond.length > 0) throw new DomainError('role_not_held', `roles: a key cannot carry roles its owner does not hold (${beyond.join(', ')})`);
        const { keyId, userId, name, secretHash, at } = command;
        return [{ type: 'identity.ApiKeyIssued', data: { keyId, userId, name, roles: [...command.roles], secretHash, issuedAt: at } }];
      }
      case 'RevokeApiKey':
        // Someone else's key answers exactly like a missing one: ids are not an oracle.
        if (!state.userId || (state.userId !== command.requesterId && !command.asAdmin)) {
          throw new DomainError('api_key_not_found', `no API key ${command.keyId}`);
        }
        if (state.revoked) return [];
        return [{ type: 'identity.ApiKeyRevoked', data: { keyId: command.keyId, userId: state.userId, revokedAt: command.at } }];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'identity.ApiKeyIssued':
        return { userId: event.data.userId, roles: event.data.roles as Role[], secretHash: event.data.secretHash, revoked: false };
      case 'identity.ApiKeyRevoked':
        return { ...state, revoked: true };
    }
  },
};
