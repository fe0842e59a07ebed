/**
 * What Stripe's answers mean for an order: a PaymentIntent's status, or the
 * card error of a confirmation, as a ChargeResult; a decline as worth the
 * dunning schedule or not. Pure, so the table is tested on its own
 * (tests/unit/billing-stripe-outcomes.test.ts).
 */
import type { ChargeResult } from './provider.js';

/**
 * Issuer declines a later attempt may get past (the money or the issuer may
 * be there tomorrow): Stripe's "try again" codes
 * (https://docs.stripe.com/declines/codes). Anything else — an expired,
 * lost or stolen card, a closed account, fraud, a card that needs its owner
 * to authenticate — fails the same way every time until the customer acts,
 * and card networks penalise merchants who keep retrying those.
 */
const RETRYABLE = new Set([
  'insufficient_funds',
  'card_velocity_exceeded',
  'withdrawal_count_limit_exceeded',
  'try_again_later',
  'issuer_not_available',
  'processing_error',
  'reenter_transaction',
  'approve_with_id',
  'do_not_honor',
  'generic_decline',
]);

/** Stripe's newer `advice_code`, when the network gave one, outranks the decline code. */
const ADVICE: Record<string, boolean> = { try_again_later: true, do_not_try_again: false, confirm_card_data: false };

export interface DeclineFacts {
  code?: string | null | undefined;
  decline_code?: string | null | undefined;
  advice_code?: string | null | undefined;
}

/** The stable reason (`insufficient_funds`, `expired_card`) and whether dunning should retry it. */
export function classifyDecline(error: DeclineFacts): { reason: string; retryable: boolean } {
  const reason = error.decline_code || error.code || 'card_declined';
  const advice = error.advice_code ? ADVICE[error.advice_code] : undefined;
  return { reason, retryable: advice ?? RETRYABLE.has(reason) };
}

export interface IntentFacts {
  id: string;
  status: string;
  last_payment_error?: DeclineFacts | null;
  next_action?: { type?: string | null } | null;
}

/** A PaymentIntent as the charge's result. */
export function chargeResultOf(intent: IntentFacts): ChargeResult {
  switch (intent.status) {
    case 'succeeded':
      return { status: 'succeeded', providerRef: intent.id };
    case 'processing':
      return { status: 'pending', providerRef: intent.id, instructions: 'Stripe is processing the payment; its webhook settles the order' };
    case 'requires_action':
      // The bank wants the customer (3-D Secure): the webhook says how it ended.
      return { status: 'pending', providerRef: intent.id, instructions: `the customer must complete ${intent.next_action?.type ?? 'an action'} with their bank` };
    case 'requires_capture':
      // Not asked for (capture is automatic); the money is held, which Stripe's webhook will settle.
      return { status: 'pending', providerRef: intent.id, instructions: 'the payment is authorised and waits for capture' };
    case 'canceled':
      return { status: 'failed', providerRef: intent.id, reason: 'canceled', retryable: false };
    default: {
      // requires_payment_method (declined), requires_confirmation: not taken.
      const { reason, retryable } = intent.last_payment_error ? classifyDecline(intent.last_payment_error) : { reason: intent.status, retryable: false };
      return { status: 'failed', providerRef: intent.id, reason, retryable };
    }
  }
}
