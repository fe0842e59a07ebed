/**
 * Stripe's webhooks in (`POST /v1/billing/webhooks/stripe`, docs/billing.md#stripe).
 *
 * 1. Verify: `Stripe-Signature` is an HMAC-SHA256 over `<timestamp>.<raw
 *    body>` with the endpoint's signing secret, and the timestamp is at most
 *    300 s old, so a captured delivery cannot be replayed later. Anything
 *    else is refused with `invalid_signature` before a byte of it is used.
 * 2. Deduplicate by Stripe's event id: the aggregate
 *    `billing.provider-event.stripe-<eventId>` exists once the event has
 *    been acted on; a redelivery finds it and changes nothing.
 * 3. Act: `payment_intent.succeeded` records the payment on the order named
 *    in the PaymentIntent's metadata, `payment_intent.payment_failed` the
 *    failure; every other type is answered and ignored.
 *
 * The event is recorded after the order service answered, not before: a crash
 * in between leaves no record, Stripe redelivers, and the order service
 * (idempotent per providerRef, payment-sink.ts) decides nothing the second
 * time. Recording first would lose the payment in that window.
 */
import Stripe from 'stripe';
import type { Logger } from '../../../infra/logger.js';
import type { Secret } from '../../../infra/secret.js';
import type { ContextDeps } from '../../context-deps.js';
import { DomainError } from '../../decider.js';
import type { Actor } from '../../identity/identity-deps.js';
import { providerEventDecider, providerEventId, type ProviderEventOutcome } from '../provider-event.decider.js';
import type { PaymentSink } from './payment-sink.js';
import { STRIPE_PROVIDER } from './stripe.js';
import { fromStripeAmount } from './stripe-amount.js';
import { classifyDecline, type DeclineFacts } from './stripe-outcomes.js';

/** Stripe's own default, and what its docs advise: older deliveries are replays or a clock far off. */
export const SIGNATURE_TOLERANCE_SECONDS = 300;

/** applied / rejected: acted on now (decider); duplicate: acted on before; ignored: not a type billing follows, or no order named. */
export const WEBHOOK_OUTCOMES = ['applied', 'rejected', 'duplicate', 'ignored'] as const;
export type WebhookOutcome = (typeof WEBHOOK_OUTCOMES)[number];

export interface WebhookAnswer {
  eventId: string;
  outcome: WebhookOutcome;
}

/** The fields of a PaymentIntent billing reads; the rest of the object depends on the account's API version. */
interface IntentFields {
  id: string;
  amount: number;
  amount_received?: number;
  currency: string;
  metadata?: Record<string, string> | null;
  last_payment_error?: DeclineFacts | null;
}

type Action = { kind: 'payment'; orderId: string; intent: IntentFields } | { kind: 'failure'; orderId: string; intent: IntentFields };

const ACTOR = 'provider:stripe';

function actionOf(event: Stripe.Event): Action | null {
  if (event.type !== 'payment_intent.succeeded' && event.type !== 'payment_intent.payment_failed') return null;
  const intent = event.data.object as unknown as IntentFields;
  // A PaymentIntent Relaygrid did not create (another integration on the account) names no order.
  const orderId = intent.metadata?.['orderId'];
  if (!orderId) return null;
  return { kind: event.type === 'payment_intent.succeeded' ? 'payment' : 'failure', orderId, intent };
}

export class StripeWebhooks {
  private readonly toleranceSeconds: number;

  constructor(
    private readonly deps: ContextDeps<'provider-event'>,
    private readonly opts: { webhookSecret: Secret; sink: PaymentSink; log: Logger; toleranceSeconds?: number },
  ) {
    this.toleranceSeconds = opts.toleranceSeconds ?? SIGNATURE_TOLERANCE_SECONDS;
  }

  async receive(raw: unknown, signature: string | string[] | undefined, correlationId: string): Promise<WebhookAnswer> {
    const event = this.verify(raw, signature);
    const action = actionOf(event);
    if (!action) return { eventId: event.id, outcome: 'ignored' };
    const id = providerEventId(STRIPE_PROVIDER, event.id);
    const { state } = await this.deps.load(providerEventDecider, 'provider-event', id);
    if (state.received) return { eventId: event.id, outcome: 'duplicate' };
    const actor: Actor = { actor: ACTOR, correlationId };
    const { outcome, detail } = await this.apply(action, actor, event.id);
    const result = await this.deps.decide(
      providerEventDecider,
      'provider-event',
      id,
      {
        type: 'RecordProviderEvent',
        provider: STRIPE_PROVIDER,
        eventId: event.id,
        eventType: event.type,
        objectRef: action.intent.id,
        orderId: action.orderId,
        outcome,
        detail,
        occurredAt: new Date(event.created * 1000),
        receivedAt: new Date(),
      },
      actor,
    );
    // Nothing decided: a concurrent delivery of the same event recorded it first.
    return { eventId: event.id, outcome: result.events.length > 0 ? outcome : 'duplicate' };
  }

  /** The event, once its signature and age check out; the library's own error text is not passed on (it can quote the secret's last characters). */
  private verify(raw: unknown, signature: string | string[] | undefined): Stripe.Event {
    if (!Buffer.isBuffer(raw) || raw.length === 0) throw new DomainError('invalid_signature', 'no body to verify');
    if (typeof signature !== 'string' || signature === '') throw new DomainError('invalid_signature', 'the Stripe-Signature header is missing');
    try {
      return Stripe.webhooks.constructEvent(raw, signature, this.opts.webhookSecret.reveal(), this.toleranceSeconds);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeSignatureVerificationError) {
        const stale = err.message === 'Timestamp outside the tolerance zone';
        this.opts.log.warn({ reason: stale ? 'timestamp_outside_tolerance' : 'signature_mismatch' }, 'stripe webhook refused');
        throw new DomainError(
          'invalid_signature',
          stale ? `the Stripe-Signature timestamp is more than ${this.toleranceSeconds} s old: a replay, or a clock that is off` : 'the Stripe-Signature header does not match the body',
        );
      }
      // Signed, but not JSON: nothing Stripe sends.
      if (err instanceof SyntaxError) throw new DomainError('invalid_json', 'the signed body is not valid JSON');
      throw err;
    }
  }

  /** The order service's answer; a rule that says no is recorded as rejected (a redelivery cannot change it), anything else propagates and Stripe retries. */
  private async apply(action: Action, actor: Actor, eventId: string): Promise<{ outcome: ProviderEventOutcome; detail: string | null }> {
    const { orderId, intent } = action;
    try {
      if (action.kind === 'payment') {
        const amount = fromStripeAmount(intent.amount_received ?? intent.amount, intent.currency);
        await this.opts.sink.recordPayment(orderId, { provider: STRIPE_PROVIDER, providerRef: intent.id, amount }, actor);
      } else {
        const { reason, retryable } = intent.last_payment_error ? classifyDecline(intent.last_payment_error) : { reason: 'payment_failed', retryable: false };
        await this.opts.sink.recordFailure(orderId, { providerRef: intent.id, reason, retryable }, actor);
      }
      return { outcome: 'applied', detail: null };
    } catch (err) {
      if (!(err instanceof DomainError)) throw err;
      this.opts.log.warn({ eventId, orderId, paymentIntent: intent.id, code: err.code }, 'stripe webhook rejected by the order');
      return { outcome: 'rejected', detail: err.code };
    }
  }
}
