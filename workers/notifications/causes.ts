/**
 * Which events are told to whom, and what the notice says: the one table
 * between the log and the notifications. Each mapped event names its
 * recipient and a template; the outbox (./outbox.ts) derives the
 * notification id from the event, the kind and the recipient.
 */
import type { StoredEvent } from '../../contracts/envelope.js';
import type { EventContext } from '../../contracts/catalogue.js';
import { openText } from '../../producers/identity/crypto/person-keys.js';
import type { Template } from '../../producers/notifications/templates.js';

export interface Cause {
  userId: string;
  template: Template;
  /** The address the event names, still sealed under the person's key (a verification goes to the address it verifies). */
  recipientSealed: Buffer | null;
  /** Rendered at send time (`invoice:<id>`): a PDF is large, and it is in the read model already. */
  attachment: string | null;
}

/** The streams the outbox follows. */
export const CAUSE_CONTEXTS: readonly EventContext[] = ['identity', 'plans', 'billing'];

/** The person's key for opening what the event seals; undefined once they were forgotten. */
export type KeyOf = (userId: string) => Buffer | undefined;

/** The notification an event causes, or null. Sealed tokens open with the key; a forgotten person's event causes nothing. */
export function causeOf(event: StoredEvent, keyOf: KeyOf): Cause | null {
  const plain = (userId: string, template: Template, attachment: string | null = null): Cause => ({ userId, template, recipientSealed: null, attachment });
  switch (event.type) {
    case 'identity.EmailVerificationRequested':
    case 'identity.PasswordResetRequested': {
      const d = (event as StoredEvent<'identity.EmailVerificationRequested' | 'identity.PasswordResetRequested'>).data;
      const token = openText(keyOf(d.userId), d.userId, d.tokenSealed);
      if (token === null) return null;
      const kind = event.type === 'identity.EmailVerificationRequested' ? 'security.email-verification' : 'security.password-reset';
      return { userId: d.userId, template: { kind, token, expiresAt: d.expiresAt }, recipientSealed: Buffer.from(d.emailSealed), attachment: null };
    }
    case 'plans.UsageThresholdReached': {
      const d = (event as StoredEvent<'plans.UsageThresholdReached'>).data;
      return plain(d.userId, { kind: 'usage.threshold', percent: d.percent, usedBytes: d.usedBytes, allowanceBytes: d.allowanceBytes });
    }
    case 'plans.ExpiryApproaching': {
      const d = (event as StoredEvent<'plans.ExpiryApproaching'>).data;
      return plain(d.userId, { kind: 'usage.expiry', daysLeft: d.daysLeft, expiresAt: d.expiresAt });
    }
    case 'plans.SubscriptionPastDue': {
      const d = (event as StoredEvent<'plans.SubscriptionPastDue'>).data;
      return plain(d.userId, { kind: 'billing.past-due', graceUntil: d.graceUntil });
    }
    case 'billing.InvoiceFinalized': {
      const d = (event as StoredEvent<'billing.InvoiceFinalized'>).data;
      return plain(d.userId, { kind: 'billing.invoice-finalized', number: d.number, totalMinor: d.totalMinor, currency: d.currency }, `invoice:${d.invoiceId}`);
    }
    // One notice per failed charge: the order's event (a renewal's invoice records the same failure too).
    case 'billing.OrderPaymentFailed': {
      const d = (event as StoredEvent<'billing.OrderPaymentFailed'>).data;
      return plain(d.userId, { kind: 'billing.payment-failed', reference: `order ${d.orderId}`, reason: d.reason, retryable: d.retryable });
    }
    default:
      return null;
  }
}

/** The user ids an event of a batch may need a key for (to open a token, to seal the notice). */
export function userOf(event: StoredEvent): string | null {
  const userId = (event.data as { userId?: unknown }).userId;
  return typeof userId === 'string' ? userId : null;
}
