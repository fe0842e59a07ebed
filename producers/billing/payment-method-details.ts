/**
 * A saved card's personal details, sealed under the person's key
 * (producers/identity/crypto/person-keys.ts): in the log with the token
 * (PaymentMethodAdded.detailsSealed), in the read model without it
 * (payment_methods.details_sealed, sealed again by the projection). Sealed in
 * the read model too, not written out as text: the projection never sees the
 * person being forgotten (identity's stream is not its own), and a row written
 * in plain would keep the brand and last four after the key is gone.
 */
import { openText } from '../identity/crypto/person-keys.js';
import { seal } from '../identity/crypto/sealing.js';
import type { PaymentMethodDetails } from './providers/provider.js';

/** What PaymentMethodAdded.detailsSealed holds: the token to charge and what the provider said of the card. */
export interface SealedPaymentMethod extends PaymentMethodDetails {
  token: string;
}

function openJson<T>(key: Buffer | undefined, userId: string, sealed: Uint8Array | null): T | null {
  const text = openText(key, userId, sealed);
  return text === null ? null : (JSON.parse(text) as T);
}

export function sealMethod(key: Buffer, userId: string, method: SealedPaymentMethod): Buffer {
  const { token, brand, last4, expMonth, expYear } = method;
  return seal(key, userId, JSON.stringify({ token, brand, last4, expMonth, expYear }));
}

/** The event's details, or null once the person was forgotten. */
export function openMethod(key: Buffer | undefined, userId: string, sealed: Uint8Array): SealedPaymentMethod | null {
  return openJson<SealedPaymentMethod>(key, userId, sealed);
}

/** What the read model keeps of the event's details: sealed again without the token; null once the person was forgotten. */
export function sealForDisplay(key: Buffer | undefined, userId: string, detailsSealed: Uint8Array): Buffer | null {
  const method = openMethod(key, userId, detailsSealed);
  if (!key || !method) return null;
  const { brand, last4, expMonth, expYear } = method;
  return seal(key, userId, JSON.stringify({ brand, last4, expMonth, expYear }));
}

/** A read-model row's details, or null once the person was forgotten. */
export function openForDisplay(key: Buffer | undefined, userId: string, sealed: Uint8Array | null): PaymentMethodDetails | null {
  return openJson<PaymentMethodDetails>(key, userId, sealed);
}
