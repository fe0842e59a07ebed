/**
 * Where a provider's asynchronous results go: the orders service (the lead
 * wires `orders` to it), called by the Stripe webhook (stripe-webhooks.ts)
 * when a PaymentIntent succeeds or fails after the charge call returned
 * `pending`, or when Stripe tells of an outcome the charge call never saw.
 *
 * Both calls must be idempotent per `providerRef`: the webhook records its
 * event only after the call returned (so a crash in between cannot lose a
 * payment), and therefore repeats the call when Stripe redelivers an event
 * whose recording did not happen. A second `recordPayment` of the same
 * providerRef on a paid order decides nothing. A rule that says no (no such
 * order, a cancelled one) throws a DomainError: the webhook records the event
 * as rejected and answers 200, since a redelivery cannot change the answer.
 */
import type { Actor } from '../../identity/identity-deps.js';
import type { Money } from '../money.js';

export interface RecordedPayment {
  provider: string;
  providerRef: string;
  amount: Money;
}

export interface RecordedFailure {
  providerRef: string;
  reason: string;
  retryable: boolean;
}

export interface PaymentSink {
  recordPayment(orderId: string, payment: RecordedPayment, actor: Actor): Promise<unknown>;
  recordFailure(orderId: string, failure: RecordedFailure, actor: Actor): Promise<unknown>;
}
