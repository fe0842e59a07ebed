/**
 * A notification's id is a function of its cause: the cause event's id, what
 * the notification tells (its kind) and to whom. A cause redelivered,
 * replayed from an older checkpoint or published twice derives the same id,
 * and the outbox's primary key stores it once.
 */
import { derivedId } from '../../contracts/ids.js';

export function notificationIdOf(causeEventId: string, kind: string, userId: string): string {
  return derivedId(`notification\n${causeEventId}\n${kind}\n${userId}`);
}

/** RFC 5322 Message-ID of a notification's mail: every attempt carries the same one, so a receiver can drop a duplicate. */
export function messageIdOf(notificationId: string, domain: string): string {
  return `<${notificationId}@${domain}>`;
}
