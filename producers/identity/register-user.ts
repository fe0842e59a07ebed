/**
 * Email reservations around the user aggregate. A registration claims the
 * address's reservation subject (expectation 0), stores the person's key, then
 * appends UserRegistered; an email change claims the new address, then appends
 * EmailChanged, then releases the old one.
 *
 * A registration that stalls after its claim (a refusal, or a process killed
 * between the steps) must not keep the address. Its clean-up, or else the
 * next registration of the address, closes the stalled user id with
 * UserRegistrationAbandoned appended at the user's expectation 0. The append
 * guard lets exactly one of the two land: the stalled UserRegistered (also
 * when its guard was claimed but its event never stored: closing it stores
 * it) or the abandonment. Only a closed (or forgotten) holder gives up the
 * address, so at most one user ever holds it, and the next attempt needs no wait.
 */
import type { EventMeta } from '../../contracts/envelope.js';
import type { DomainError } from '../decider.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import { claimOrTakeOver } from '../reservation.js';
import { emailReservationDecider } from './email-reservation.decider.js';
import { userDecider, type UserState } from './user.decider.js';

/**
 * How long a claim by a registered user who holds another address is honoured:
 * that user may be between claiming and appending EmailChanged, which cannot
 * be closed like a registration.
 */
export const ABANDONED_RESERVATION_GRACE_MS = 30_000;

export function reservationSubject(handler: CommandHandler, emailHash: string): string {
  return handler.store.names.aggregate('identity', 'email', emailHash);
}

/** Claims the address for `userId`; throws DomainError email_taken when someone else holds it. */
export async function reserveEmail(handler: CommandHandler, emailHash: string, userId: string, meta: EventMeta, now = new Date()): Promise<void> {
  const subject = reservationSubject(handler, emailHash);
  await claimOrTakeOver(
    (takeOverFrom) => handler.handle(emailReservationDecider, subject, { type: 'ReserveEmail', emailHash, userId, at: now, takeOverFrom }, { meta }),
    'email_taken',
    (holder, taken) => holderGaveUp(handler, holder, emailHash, taken, meta, now),
  );
}

export async function releaseEmail(handler: CommandHandler, emailHash: string, userId: string, meta: EventMeta, now = new Date()): Promise<void> {
  await handler.handle(emailReservationDecider, reservationSubject(handler, emailHash), { type: 'ReleaseEmail', emailHash, userId, at: now }, { meta });
}

/**
 * Closes `userId` unless it is registered (see the top of this file) and
 * answers its state (`abandoned`, or the registered user) and last sequence.
 */
export async function abandonRegistration(handler: CommandHandler, userId: string, emailHash: string, meta: EventMeta, now = new Date()): Promise<{ state: UserState; seq: number }> {
  const subject = handler.store.names.aggregate('identity', 'user', userId);
  return handler.handle(userDecider, subject, { type: 'AbandonRegistration', userId, emailHash, at: now }, { meta });
}

/** The user id holding an address, if any (from the log, so never behind a read model). */
export async function ownerOfEmail(handler: CommandHandler, emailHash: string): Promise<string | null> {
  return (await handler.load(emailReservationDecider, reservationSubject(handler, emailHash))).state.owner;
}

/** Whether the holder of a claim no longer stands behind it, so the claim may move. */
async function holderGaveUp(handler: CommandHandler, holder: string, emailHash: string, taken: DomainError, meta: EventMeta, now: Date): Promise<boolean> {
  const { state } = await abandonRegistration(handler, holder, emailHash, meta, now);
  // A forgotten user's address is free (forgetting releases it; this covers a forget that stopped before).
  if (state.abandoned || state.status === 'forgotten') return true;
  if (state.emailHash === emailHash) return false;
  const reservedAt = taken.details['reservedAt'];
  return reservedAt instanceof Date && now.getTime() - reservedAt.getTime() >= ABANDONED_RESERVATION_GRACE_MS;
}
