/**
 * Email uniqueness: one reservation subject per address
 * (`<ns>.evt.identity.email.<index key>`, see email.ts), under the rule of
 * producers/reservation.ts: of two concurrent registrations exactly one wins.
 */
import { DomainError } from '../decider.js';
import { reservationDecider, type ReservationState } from '../reservation.js';

export type EmailReservationState = ReservationState;

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

export const emailReservationDecider = reservationDecider<EmailReservationCommand, 'identity.EmailReserved' | 'identity.EmailReleased'>({
  ask: (command) => (command.type === 'ReleaseEmail' ? { release: true, owner: command.userId } : { release: false, owner: command.userId, takeOverFrom: command.takeOverFrom }),
  reserved: ({ emailHash, userId, at }) => ({ type: 'identity.EmailReserved', data: { emailHash, userId, reservedAt: at } }),
  released: ({ emailHash, userId, at }) => ({ type: 'identity.EmailReleased', data: { emailHash, userId, releasedAt: at } }),
  taken: (state) => new DomainError('email_taken', 'this email address is already registered', { owner: state.owner, reservedAt: state.reservedAt }),
  after: (event) => (event.type === 'identity.EmailReleased' ? { owner: null, reservedAt: null } : { owner: event.data.userId, reservedAt: event.data.reservedAt }),
});
