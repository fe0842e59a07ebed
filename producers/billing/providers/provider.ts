/**
 * A payment provider, as billing sees one: charge an amount against a stored
 * payment method (or open a payment the customer completes elsewhere), refund
 * it, and describe a payment method token. `manual` (bank transfer, crypto:
 * an operator confirms) and `stripe` (PaymentIntents) implement it; adding a
 * provider is implementing this and registering it (docs/billing.md).
 *
 * Every call carries an idempotency key derived from the order (and attempt),
 * so a retried call after a crash charges once at the provider too.
 */
import type { Money } from '../money.js';

export interface ChargeRequest {
  orderId: string;
  userId: string;
  amount: Money;
  /** The stored provider reference to charge; null when the customer pays by other means (manual). */
  paymentMethod: { paymentMethodId: string; token: string } | null;
  /** Stable for one attempt of one order: the provider's own idempotency key. */
  idempotencyKey: string;
  description: string;
}

export type ChargeResult =
  /** Money taken. */
  | { status: 'succeeded'; providerRef: string }
  /** Waiting: for an operator's confirmation (manual), or the provider's webhook (stripe `processing`, `requires_action`). */
  | { status: 'pending'; providerRef: string; instructions?: string }
  /** Not taken; `retryable`: worth the dunning schedule (insufficient funds), or not (card removed). */
  | { status: 'failed'; providerRef: string | null; reason: string; retryable: boolean };

export interface RefundRequest {
  orderId: string;
  providerRef: string;
  amount: Money;
  idempotencyKey: string;
}

export interface PaymentMethodDetails {
  brand: string;
  last4: string;
  expMonth: number;
  expYear: number;
}

export interface PaymentProvider {
  /** `manual`, `stripe`: what orders and payment methods record. */
  readonly name: string;
  charge(request: ChargeRequest): Promise<ChargeResult>;
  refund(request: RefundRequest): Promise<{ providerRef: string }>;
  /** What the provider knows of a payment method token (brand, last four, expiry); the token is all that is stored besides. */
  describeMethod?(token: string): Promise<PaymentMethodDetails>;
}
