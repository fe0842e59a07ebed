/**
 * Email reservations around the user aggregate. A registration (or an email
 * change) first claims the address's reservation subject with expectation 0,
 * then appends to the user. If a process dies between the two appends, the
 * reservation points at a user that does not hold the address; after a grace
 * period a new claim may take it over (checked against that user's state).
 */
import type { EventMeta } from '../../contracts/envelope.js';
import { DomainError } from '../decider.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import { emailReservationDecider } from './email-reservation.decider.js';
import { userDecider } from './user.decider.js';

export const ABANDONED_RESERVATION_GRACE_MS = 30_000;

export function reservationSubject(handler: CommandHandler, emailHash: string): string {
  return handler.store.names.aggregate('identity', 'email', emailHash);
}

/** Claims the address for `userId`; throws DomainError email_taken when someone else holds it. */
export async function reserveEmail(handler: CommandHandler, emailHash: string, userId: string, meta: EventMeta, now = new Date()): Promise<void> {
  const subject = reservationSubject(handler, emailHash);
  const reserve = (ownerAbandoned: boolean) =>
    handler.handle(emailReservationDecider, subject, { type: 'ReserveEmail', emailHash, userId, at: now, ownerAbandoned }, { meta });
  try {
    await reserve(false);
  } catch (err) {
    if (!(err instanceof DomainError) || !(await isAbandoned(handler, err, emailHash, now))) throw err;
    await reserve(true);
  }
}

export async function releaseEmail(handler: CommandHandler, emailHash: string, userId: string, meta: EventMeta, now = new Date()): Promise<void> {
  await handler.handle(emailReservationDecider, reservationSubject(handler, emailHash), { type: 'ReleaseEmail', emailHash, userId, at: now }, { meta });
}

/** The user id holding an address, if any (from the log, so never behind a read model). */
export async function ownerOfEmail(handler: CommandHandler, emailHash: string): Promise<string | null> {
  return (await handler.load(emailReservationDecider, reservationSubject(handler, emailHash))).state.owner;
}

async function isAbandoned(handler: CommandHandler, err: DomainError, emailHash: string, now: Date): Promise<boolean> {
  const owner = err.details['owner'];
  const reservedAt = err.details['reservedAt'];
  if (err.code !== 'email_taken' || typeof owner !== 'string' || !(reservedAt instanceof Date)) return false;
  if (now.getTime() - reservedAt.getTime() < ABANDONED_RESERVATION_GRACE_MS) return false;
  const { state } = await handler.load(userDecider, handler.store.names.aggregate('identity', 'user', owner));
  return !state.userId || state.emailHash !== emailHash || state.status === 'forgotten';
}
