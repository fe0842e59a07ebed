/**
 * The Stripe provider through the official `stripe` client over real HTTP,
 * against the local fake of Stripe's API (tests/support/fake-stripe.ts):
 * Stripe itself cannot be reached from these machines.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { stripeConfig } from '../../infra/stripe-config.js';
import { DomainError } from '../../producers/decider.js';
import { money } from '../../producers/billing/money.js';
import type { ChargeRequest } from '../../producers/billing/providers/provider.js';
import { StripeProvider, stripeToken } from '../../producers/billing/providers/stripe.js';
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.js';

const WEBHOOK_SECRET = 'whsec_testsecret0123456789';

let fake: FakeStripe;
let provider: StripeProvider;
const logLines: string[] = [];
const log = pino({ level: 'trace' }, { write: (line: string) => void logLines.push(line) });

function providerWithKey(key: string): StripeProvider {
  const config = stripeConfig({ RG_STRIPE_SECRET_KEY: key, RG_STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, RG_STRIPE_API_BASE: fake.apiBase });
  if (!config) throw new Error('stripe not configured');
  return StripeProvider.fromConfig(config, log);
}

let n = 0;
function chargeOf(paymentMethodId: string, over: Partial<ChargeRequest> = {}): ChargeRequest {
  n++;
  return {
    orderId: `ord_${n}`,
    userId: `user-${n}`,
    amount: money(1299n, 'EUR'),
    paymentMethod: { paymentMethodId: `rg-pm-${n}`, token: stripeToken('cus_alice', paymentMethodId) },
    idempotencyKey: `ord_${n}:charge:1`,
    description: 'Relaygrid Pro, 1 month',
    ...over,
  };
}

async function refusal(promise: Promise<unknown>): Promise<DomainError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

beforeAll(async () => {
  fake = await startFakeStripe();
  provider = providerWithKey(fake.secretKey);
  fake.addCard({ id: 'pm_visa', customer: 'cus_alice', brand: 'visa', last4: '4242', expMonth: 4, expYear: 2031 });
  fake.addCard({ id: 'pm_broke', customer: 'cus_alice', outcome: { decline: 'insufficient_funds' } });
  fake.addCard({ id: 'pm_expired', customer: 'cus_alice', outcome: { decline: 'expired_card' } });
  fake.addCard({ id: 'pm_3ds', customer: 'cus_alice', outcome: 'requires_action' });
  fake.addCard({ id: 'pm_slow', customer: 'cus_alice', outcome: 'processing' });
  fake.addCard({ id: 'pm_bob', customer: 'cus_bob' });
});
afterAll(async () => {
  await fake?.close();
  // Whatever happened above, the key never reached a log line.
  expect(logLines.join('\n')).not.toContain(fake.secretKey);
});
beforeEach(() => {
  fake.failNext(0);
});

describe('Stripe provider: charge', () => {
  it('confirms a PaymentIntent off-session with the saved card, in minor units, with the idempotency key', async () => {
    const request = chargeOf('pm_visa');
    const result = await provider.charge(request);
    expect(result).toMatchObject({ status: 'succeeded', providerRef: expect.stringMatching(/^pi_/) as unknown });
    const seen = fake.requests.at(-1);
    expect(seen).toMatchObject({ method: 'POST', path: '/v1/payment_intents', idempotencyKey: request.idempotencyKey });
    expect(seen?.params).toEqual({
      amount: '1299',
      currency: 'eur',
      customer: 'cus_alice',
      payment_method: 'pm_visa',
      confirm: 'true',
      off_session: 'true',
      description: 'Relaygrid Pro, 1 month',
      metadata: { orderId: request.orderId, userId: request.userId },
    });
  });

  it('the same idempotency key charges once: Stripe answers the first PaymentIntent again', async () => {
    const request = chargeOf('pm_visa');
    const before = fake.intents.size;
    const first = await provider.charge(request);
    const second = await provider.charge(request);
    expect(second).toEqual(first);
    expect(fake.intents.size).toBe(before + 1);
    expect(fake.requests.at(-1)).toMatchObject({ idempotencyKey: request.idempotencyKey, replayed: true });
  });

  it('a decline for insufficient funds is failed and worth retrying; the PaymentIntent is the reference', async () => {
    const result = await provider.charge(chargeOf('pm_broke'));
    expect(result).toEqual({ status: 'failed', providerRef: expect.stringMatching(/^pi_/) as unknown, reason: 'insufficient_funds', retryable: true });
  });

  it('an expired card is failed and not retried', async () => {
    expect(await provider.charge(chargeOf('pm_expired'))).toMatchObject({ status: 'failed', reason: 'expired_card', retryable: false });
  });

  it('a removed card (Stripe no longer has the payment method) is failed and not retried', async () => {
    expect(await provider.charge(chargeOf('pm_removed'))).toEqual({ status: 'failed', providerRef: null, reason: 'payment_method_missing', retryable: false });
  });

  it('3-D Secure (requires_action) and processing are pending: the webhook settles them', async () => {
    expect(await provider.charge(chargeOf('pm_3ds'))).toMatchObject({ status: 'pending', providerRef: expect.stringMatching(/^pi_/) as unknown, instructions: expect.stringContaining('use_stripe_sdk') as unknown });
    expect(await provider.charge(chargeOf('pm_slow'))).toMatchObject({ status: 'pending' });
  });

  it('a declined retry of a decline: scripts change per payment method', async () => {
    fake.addCard({ id: 'pm_later', customer: 'cus_alice', outcome: { decline: 'insufficient_funds' } });
    expect(await provider.charge(chargeOf('pm_later'))).toMatchObject({ status: 'failed', retryable: true });
    fake.script('pm_later', 'succeed');
    expect(await provider.charge(chargeOf('pm_later'))).toMatchObject({ status: 'succeeded' });
  });

  it("Stripe's amount units: JPY as is, ISK in hundredths (5 ISK is 500), a KWD amount not ending in 0 refused before any call", async () => {
    await provider.charge(chargeOf('pm_visa', { amount: money(500n, 'JPY') }));
    expect(fake.requests.at(-1)?.params).toMatchObject({ amount: '500', currency: 'jpy' });
    await provider.charge(chargeOf('pm_visa', { amount: money(5n, 'ISK') }));
    expect(fake.requests.at(-1)?.params).toMatchObject({ amount: '500', currency: 'isk' });
    const calls = fake.requests.length;
    expect((await refusal(provider.charge(chargeOf('pm_visa', { amount: money(5125n, 'KWD') })))).code).toBe('amount_not_chargeable');
    expect(fake.requests.length).toBe(calls);
  });

  it('a card that is not attached to the customer of the token is not charged', async () => {
    const result = await provider.charge(chargeOf('pm_bob'));
    expect(result).toMatchObject({ status: 'failed', retryable: false });
  });

  it('no payment method: failed without a call', async () => {
    const calls = fake.requests.length;
    expect(await provider.charge(chargeOf('pm_visa', { paymentMethod: null }))).toEqual({ status: 'failed', providerRef: null, reason: 'payment_method_required', retryable: false });
    expect(fake.requests.length).toBe(calls);
  });
});

describe('Stripe provider: when Stripe fails', () => {
  it('a 500 is retried by the client with the same key: one PaymentIntent', async () => {
    const request = chargeOf('pm_visa');
    const before = fake.intents.size;
    fake.failNext(1);
    expect(await provider.charge(request)).toMatchObject({ status: 'succeeded' });
    const attempts = fake.requests.filter((r) => r.idempotencyKey === request.idempotencyKey);
    expect(attempts).toHaveLength(2);
    expect(fake.intents.size).toBe(before + 1);
  });

  it('Stripe down is payment_provider_unavailable, safe to retry, and nothing was charged', async () => {
    const before = fake.intents.size;
    fake.failNext(10);
    const err = await refusal(provider.charge(chargeOf('pm_visa')));
    expect(err.code).toBe('payment_provider_unavailable');
    expect(fake.intents.size).toBe(before);
  });

  it('a wrong secret key: the error and the log name the variable, never the key or the part of it Stripe quotes', async () => {
    const wrong = 'sk_test_0000wrongkey0000ZQXJ';
    const from = logLines.length;
    const err = await refusal(providerWithKey(wrong).charge(chargeOf('pm_visa')));
    expect(err.code).toBe('payment_provider_unavailable');
    expect(err.message).toContain('RG_STRIPE_SECRET_KEY');
    const logged = logLines.slice(from).join('\n');
    expect(logged).toContain('StripeAuthenticationError');
    for (const text of [err.message, JSON.stringify(err), logged]) {
      expect(text).not.toContain(wrong);
      expect(text).not.toContain('ZQXJ');
      expect(text).not.toContain('Invalid API Key');
    }
  });
});

describe('Stripe provider: refund', () => {
  it('refunds a PaymentIntent once per idempotency key, and refuses more than was paid', async () => {
    const charged = await provider.charge(chargeOf('pm_visa'));
    if (charged.status !== 'succeeded') throw new Error('not charged');
    const refund = { orderId: 'ord_r', providerRef: charged.providerRef, amount: money(500n, 'EUR'), idempotencyKey: 'ord_r:refund:1' };
    const first = await provider.refund(refund);
    expect(first.providerRef).toMatch(/^re_/);
    expect(fake.requests.at(-1)).toMatchObject({ path: '/v1/refunds', idempotencyKey: 'ord_r:refund:1', params: { payment_intent: charged.providerRef, amount: '500', metadata: { orderId: 'ord_r' } } });
    expect(await provider.refund(refund)).toEqual(first);
    expect([...fake.refunds.values()].filter((r) => r['payment_intent'] === charged.providerRef)).toHaveLength(1);
    const err = await refusal(provider.refund({ ...refund, amount: money(1000n, 'EUR'), idempotencyKey: 'ord_r:refund:2' }));
    expect(err.code).toBe('refund_refused');
    expect(err.message).toContain('amount_too_large');
  });
});

describe('Stripe provider: describeMethod', () => {
  it("answers the card's brand, last four and expiry from Stripe", async () => {
    expect(await provider.describeMethod(stripeToken('cus_alice', 'pm_visa'))).toEqual({ brand: 'visa', last4: '4242', expMonth: 4, expYear: 2031 });
    expect(fake.requests.at(-1)).toMatchObject({ method: 'GET', path: '/v1/payment_methods/pm_visa' });
  });

  it.each([
    ['a payment method of another customer', stripeToken('cus_alice', 'pm_bob')],
    ['an unknown payment method', stripeToken('cus_alice', 'pm_nothing')],
    ['a token that is not cus_…/pm_…', 'pm_visa'],
  ])('refuses %s with invalid_payment_method', async (_what, token) => {
    expect((await refusal(provider.describeMethod(token))).code).toBe('invalid_payment_method');
  });
});
