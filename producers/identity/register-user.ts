/**
 * Registration: claim the email's reservation subject, then create the user.
 * If a process dies between the two appends, the reservation points at a user
 * that never came to be; after a grace period a new registration may take it
 * over (checked against the user's subject, which is then still empty).
 */
import { createHash } from 'node:crypto';
import { uuidv7 } from '../../contracts/ids.js';
import type { EventMeta } from '../../contracts/envelope.js';
import { DomainError } from '../decider.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import { emailReservationDecider } from './email-reservation.decider.js';
import { userDecider } from './user.decider.js';

export const ABANDONED_RESERVATION_GRACE_MS = 30_000;

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export function emailHash(email: string): string {
  return createHash('sha256').update(normaliseEmail(email)).digest('hex');
}

export interface RegisteredUser {
  userId: string;
  /** Stream sequence of the UserRegistered event: pass it to reads for read-your-writes. */
  seq: number;
}

export async function registerUser(
  handler: CommandHandler,
  input: { email: string; displayName?: string | null },
  meta: EventMeta,
  now = new Date(),
): Promise<RegisteredUser> {
  const names = handler.store.names;
  const userId = uuidv7(now.getTime());
  // A registration is the person acting on their own behalf.
  meta = { ...meta, actor: meta.actor ?? `user:${userId}` };
  const email = normaliseEmail(input.email);
  const hash = emailHash(email);
  const reservation = names.aggregate('identity', 'email', hash);
  const reserve = (ownerAbandoned: boolean) =>
    handler.handle(emailReservationDecider, reservation, { type: 'ReserveEmail', emailHash: hash, userId, at: now, ownerAbandoned }, { meta });
  try {
    await reserve(false);
  } catch (err) {
    if (!(err instanceof DomainError) || !(await isAbandoned(handler, err, now))) throw err;
    await reserve(true);
  }
  const userSubject = names.aggregate('identity', 'user', userId);
  const result = await handler.handle(
    userDecider,
    userSubject,
    { type: 'RegisterUser', userId, email, displayName: input.displayName ?? null, at: now },
    { meta, assumeNew: true },
  );
  return { userId, seq: result.seq };
}

async function isAbandoned(handler: CommandHandler, err: DomainError, now: Date): Promise<boolean> {
  const owner = err.details['owner'];
  const reservedAt = err.details['reservedAt'];
  if (err.code !== 'email_taken' || typeof owner !== 'string' || !(reservedAt instanceof Date)) return false;
  if (now.getTime() - reservedAt.getTime() < ABANDONED_RESERVATION_GRACE_MS) return false;
  return (await handler.store.lastSequence(handler.store.names.aggregate('identity', 'user', owner))) === 0;
}
