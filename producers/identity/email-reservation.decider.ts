/**
 * Email uniqueness: one reservation subject per address
 * (`<ns>.evt.identity.email.<index key>`, see email.ts). The first claim is appended with
 * expectation 0, so of two concurrent registrations exactly one wins.
 */
import { DomainError, type Decider } from '../decider.js';

export interface EmailReservationState {
  owner: string | null;
  reservedAt: Date | null;
}

export type EmailReservationCommand =
  | { type: 'ReleaseEmail'; emailHash: string; userId: string; at: Date }
  | {
      type: 'ReserveEmail';
      emailHash: string;
      userId: string;
      at: Date;
      /**
       * The holder whose claim the caller found stale (its registration was
       * closed as abandoned, or the holder was forgotten; see register-user.ts):
       * the claim may move from that holder, and from no one else, so a
       * takeover decided against one holder cannot displace the next.
       */
      takeOverFrom?: string;
    };

export const emailReservationDecider: Decider<EmailReservationState, EmailReservationCommand, 'identity.EmailReserved' | 'identity.EmailReleased'> = {
  initialState: { owner: null, reservedAt: null },
  decide(command, state) {
    if (command.type === 'ReleaseEmail') {
      // Only the holder can give an address up; anything else is already done.
      if (state.owner !== command.userId) return [];
      return [{ type: 'identity.EmailReleased', data: { emailHash: command.emailHash, userId: command.userId, releasedAt: command.at } }];
    }
    if (state.owner === command.userId) return [];
    if (state.owner !== null && state.owner !== command.takeOverFrom) {
      throw new DomainError('email_taken', 'this email address is already registered', { owner: state.owner, reservedAt: state.reservedAt });
    }
    return [{ type: 'identity.EmailReserved', data: { emailHash: command.emailHash, userId: command.userId, reservedAt: command.at } }];
  },
  evolve(_state, event) {
    if (event.type === 'identity.EmailReleased') return { owner: null, reservedAt: null };
    return { owner: event.data.userId, reservedAt: event.data.reservedAt };
  },
};
