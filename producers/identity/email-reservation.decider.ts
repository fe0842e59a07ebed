/**
 * Email uniqueness: one reservation subject per address
 * (`<ns>.evt.identity.email.<sha256>`). The first claim is appended with
 * expectation 0, so of two concurrent registrations exactly one wins.
 */
import { DomainError, type Decider } from '../decider.js';

export interface EmailReservationState {
  owner: string | null;
  reservedAt: Date | null;
}

export type EmailReservationCommand = {
  type: 'ReserveEmail';
  emailHash: string;
  userId: string;
  at: Date;
  /**
   * Set when the current owner's registration never completed (its user
   * aggregate has no events past the grace period): the claim may move.
   */
  ownerAbandoned?: boolean;
};

export const emailReservationDecider: Decider<EmailReservationState, EmailReservationCommand, 'identity.EmailReserved'> = {
  initialState: { owner: null, reservedAt: null },
  decide(command, state) {
    if (state.owner === command.userId) return [];
    if (state.owner !== null && !command.ownerAbandoned) {
      throw new DomainError('email_taken', 'this email address is already registered', { owner: state.owner, reservedAt: state.reservedAt });
    }
    return [{ type: 'identity.EmailReserved', data: { emailHash: command.emailHash, userId: command.userId, reservedAt: command.at } }];
  },
  evolve(_state, event) {
    return { owner: event.data.userId, reservedAt: event.data.reservedAt };
  },
};
