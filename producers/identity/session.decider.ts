/**
 * A session (`<ns>.evt.identity.session.<id>`): one login and the refresh-token
 * family it starts. Its own aggregate, so logins never contend with changes to
 * the user. The live token state is in Redis; the log records that it began and
 * why it ended.
 */
import { DomainError, type Decider } from '../decider.js';

export interface SessionState {
  userId: string | null;
  ended: boolean;
}

export type SessionEndReason = 'logout' | 'revoked' | 'reuse_detected' | 'password_changed' | 'suspended' | 'forgotten';

export type SessionCommand =
  | { type: 'StartSession'; sessionId: string; userId: string; method: string; detailsSealed: Buffer; at: Date }
  | { type: 'EndSession'; sessionId: string; reason: SessionEndReason; at: Date };

type K = 'identity.SessionStarted' | 'identity.SessionEnded';

export const sessionDecider: Decider<SessionState, SessionCommand, K> = {
  initialState: { userId: null, ended: false },
  decide(command, state) {
    switch (command.type) {
      case 'StartSession':
        if (state.userId) throw new DomainError('session_exists', `session ${command.sessionId} already exists`);
        return [
          {
            type: 'identity.SessionStarted',
            data: { sessionId: command.sessionId, userId: command.userId, method: command.method, detailsSealed: command.detailsSealed, startedAt: command.at },
          },
        ];
      case 'EndSession':
        if (!state.userId) throw new DomainError('session_not_found', `no session ${command.sessionId}`);
        if (state.ended) return [];
        return [{ type: 'identity.SessionEnded', data: { sessionId: command.sessionId, userId: state.userId, reason: command.reason, endedAt: command.at } }];
    }
  },
  evolve(state, event) {
    switch (event.type) {
      case 'identity.SessionStarted':
        return { userId: event.data.userId, ended: false };
      case 'identity.SessionEnded':
        return { ...state, ended: true };
    }
  },
};
