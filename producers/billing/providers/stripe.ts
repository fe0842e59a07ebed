/**
 * The Stripe provider (docs/billing.md#stripe), on Stripe's own Node client:
 * a charge is a PaymentIntent confirmed off-session against the customer's
 * saved card, a refund a Refund of that PaymentIntent, a payment method's
 * brand, last four and expiry come from the PaymentMethod. Every call that
 * creates something carries the request's idempotency key as Stripe's
 * `Idempotency-Key`, so a retry after a crash or a lost answer charges once.
 *
 * The secret key reaches only the client. Stripe's error texts can quote the
 * key's last characters, so none of them is passed on: errors and log lines
 * carry Stripe's type, code, HTTP status and request id only.
 */
import Stripe from 'stripe';
import type { Logger } from '../../../infra/logger.js';
import type { StripeConfig } from '../../../infra/stripe-config.js';
import { DomainError } from '../../decider.js';
import type { ChargeRequest, ChargeResult, PaymentMethodDetails, PaymentProvider, RefundRequest } from './provider.js';
import { toStripeAmount } from './stripe-amount.js';
import { chargeResultOf, classifyDecline } from './stripe-outcomes.js';

export const STRIPE_PROVIDER = 'stripe';

/** How long one call may take before the client gives up (and retries it with the same key). */
const TIMEOUT_MS = 30_000;

/**
 * A Stripe payment method as billing stores it (PaymentMethodAdded's token):
 * the Customer and the PaymentMethod attached to it, `cus_…/pm_…`. An
 * off-session charge needs both, and the provider interface carries one token.
 */
export function stripeToken(customerId: string, paymentMethodId: string): string {
  return `${customerId}/${paymentMethodId}`;
}

const TOKEN = /^(cus_[A-Za-z0-9]+)\/(pm_[A-Za-z0-9]+)$/;

export function parseStripeToken(token: string): { customer: string; paymentMethod: string } {
  const match = TOKEN.exec(token);
  if (!match?.[1] || !match[2]) throw new DomainError('invalid_payment_method', 'a Stripe payment method is "cus_…/pm_…": the customer and the payment method attached to it', { field: 'token' });
  return { customer: match[1], paymentMethod: match[2] };
}

export function createStripeClient(config: StripeConfig): Stripe {
  return new Stripe(config.secretKey.reveal(), {
    // Retries reuse the call's idempotency key: safe for creations.
    maxNetworkRetries: 2,
    timeout: TIMEOUT_MS,
    telemetry: false,
    appInfo: { name: 'relaygrid' },
    ...(config.apiBase ? { host: config.apiBase.host, port: config.apiBase.port, protocol: config.apiBase.protocol } : {}),
  });
}

type Call = 'charge' | 'refund' | 'describe_method';

export class StripeProvider implements PaymentProvider {
  readonly name = STRIPE_PROVIDER;

  constructor(
    private readonly stripe: Stripe,
    private readonly log: Logger,
  ) {}

  static fromConfig(config: StripeConfig, log: Logger): StripeProvider {
    return new StripeProvider(createStripeClient(config), log);
  }

  async charge(request: ChargeRequest): Promise<ChargeResult> {
    if (!request.paymentMethod) return { status: 'failed', providerRef: null, reason: 'payment_method_required', retryable: false };
    const { customer, paymentMethod } = parseStripeToken(request.paymentMethod.token);
    const { amount, currency } = toStripeAmount(request.amount);
    try {
      const intent = await this.stripe.paymentIntents.create(
        {
          amount,
          currency,
          customer,
          payment_method: paymentMethod,
          confirm: true,
          off_session: true,
          description: request.description,
          metadata: { orderId: request.orderId, userId: request.userId },
        },
        { idempotencyKey: request.idempotencyKey },
      );
      return chargeResultOf(intent);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeCardError) {
        // A decline: Stripe answers 402 with the PaymentIntent it created, now `requires_payment_method`.
        this.note('charge', err, { orderId: request.orderId });
        return { status: 'failed', providerRef: err.payment_intent?.id ?? null, ...classifyDecline(err) };
      }
      if (err instanceof Stripe.errors.StripeInvalidRequestError && err.code) {
        // The customer or payment method is gone (a card removed in Stripe), or Stripe will not take this charge at all.
        this.note('charge', err, { orderId: request.orderId });
        return { status: 'failed', providerRef: err.payment_intent?.id ?? null, reason: err.code === 'resource_missing' ? 'payment_method_missing' : err.code, retryable: false };
      }
      throw this.refusal('charge', err, { orderId: request.orderId });
    }
  }

  async refund(request: RefundRequest): Promise<{ providerRef: string }> {
    const { amount } = toStripeAmount(request.amount);
    let refund: Stripe.Refund;
    try {
      refund = await this.stripe.refunds.create({ payment_intent: request.providerRef, amount, metadata: { orderId: request.orderId } }, { idempotencyKey: request.idempotencyKey });
    } catch (err) {
      if (err instanceof Stripe.errors.StripeInvalidRequestError) {
        this.note('refund', err, { orderId: request.orderId });
        throw new DomainError('refund_refused', `Stripe refused the refund (${err.code ?? 'invalid_request'})`);
      }
      throw this.refusal('refund', err, { orderId: request.orderId });
    }
    if (refund.status === 'failed' || refund.status === 'canceled') throw new DomainError('refund_refused', `Stripe's refund ${refund.id} is ${refund.status}`);
    return { providerRef: refund.id };
  }

  async describeMethod(token: string): Promise<PaymentMethodDetails> {
    const { customer, paymentMethod } = parseStripeToken(token);
    let method: Stripe.PaymentMethod;
    try {
      method = await this.stripe.paymentMethods.retrieve(paymentMethod);
    } catch (err) {
      if (err instanceof Stripe.errors.StripeInvalidRequestError) {
        this.note('describe_method', err, {});
        throw new DomainError('invalid_payment_method', 'Stripe has no such payment method', { field: 'token' });
      }
      throw this.refusal('describe_method', err, {});
    }
    const owner = typeof method.customer === 'string' ? method.customer : (method.customer?.id ?? null);
    // A payment method not attached to the customer cannot be charged off-session.
    if (owner !== customer) throw new DomainError('invalid_payment_method', 'the payment method is not attached to that Stripe customer', { field: 'token' });
    if (!method.card) throw new DomainError('invalid_payment_method', `a Stripe payment method of type ${method.type} is not a card`, { field: 'token' });
    return { brand: method.card.brand, last4: method.card.last4, expMonth: method.card.exp_month, expYear: method.card.exp_year };
  }

  /** What is safe to log of a Stripe error: never its message (it can quote the key). */
  private facts(err: unknown): Record<string, unknown> {
    if (!(err instanceof Stripe.errors.StripeError)) return { errorName: err instanceof Error ? err.name : typeof err };
    return { stripeType: err.type, stripeCode: err.code, declineCode: err.decline_code, statusCode: err.statusCode, stripeRequestId: err.requestId };
  }

  private note(call: Call, err: unknown, context: Record<string, string>): void {
    this.log.info({ call, ...context, ...this.facts(err) }, 'stripe said no');
  }

  /**
   * Stripe unreachable, overloaded, failing, or refusing the key: nothing is
   * known about the charge, so the caller keeps the order as it was and may
   * try again with the same idempotency key.
   */
  private refusal(call: Call, err: unknown, context: Record<string, string>): Error {
    this.log.error({ call, ...context, ...this.facts(err) }, 'stripe call failed');
    // The same key with other parameters: the caller derived one key for two different requests, a bug to fix, not to retry.
    if (err instanceof Stripe.errors.StripeIdempotencyError) return new Error(`Stripe refused the idempotency key of this ${call}: it was used before with other parameters`);
    const key = err instanceof Stripe.errors.StripeAuthenticationError || err instanceof Stripe.errors.StripePermissionError;
    return new DomainError(
      'payment_provider_unavailable',
      key ? 'Stripe refused the configured secret key (RG_STRIPE_SECRET_KEY)' : 'Stripe did not answer the call; it is safe to try again (the same idempotency key charges once)',
    );
  }
}
