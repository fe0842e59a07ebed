/**
 * `POST /v1/billing/webhooks/stripe` through the real API, NATS and the
 * billing stream, with deliveries signed by the `stripe` package's own
 * generateTestHeaderString. The PaymentIntents come from the provider
 * charging the local fake of Stripe's API (Stripe is unreachable from here);
 * the order service is a recording sink (the lead's end-to-end test runs the
 * real one).
 */
import Stripe from 'stripe';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import type { StripeConfig } from '../../infra/stripe-config.js';
import { money } from '../../producers/billing/money.js';
import type { PaymentSink, RecordedFailure, RecordedPayment } from '../../producers/billing/providers/payment-sink.js';
import { StripeProvider, stripeToken } from '../../producers/billing/providers/stripe.js';
import { DomainError } from '../../producers/decider.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import type { Actor } from '../../producers/identity/identity-deps.js';
import { startFakeStripe, type FakeStripe } from '../support/fake-stripe.js';
import { isolated, type Isolated } from '../support/isolated.js';

const SECRET = 'whsec_relaygridtestsigningsecret0001';

type Call = { kind: 'payment'; orderId: string; payment: RecordedPayment; actor: Actor } | { kind: 'failure'; orderId: string; failure: RecordedFailure; actor: Actor };

/** The order service as the webhook sees it, recording what it is told; an order id can be made to refuse (a rule) or to fail once (an outage). */
class RecordingSink implements PaymentSink {
  calls: Call[] = [];
  refuse = new Set<string>();
  failOnce = new Set<string>();

  private check(orderId: string): void {
    if (this.refuse.has(orderId)) throw new DomainError('order_not_found', `no order ${orderId}`);
    if (this.failOnce.delete(orderId)) throw new Error('the order service is down');
  }

  recordPayment(orderId: string, payment: RecordedPayment, actor: Actor): Promise<void> {
    this.calls.push({ kind: 'payment', orderId, payment, actor });
    this.check(orderId);
    return Promise.resolve();
  }

  recordFailure(orderId: string, failure: RecordedFailure, actor: Actor): Promise<void> {
    this.calls.push({ kind: 'failure', orderId, failure, actor });
    this.check(orderId);
    return Promise.resolve();
  }
}

let fake: FakeStripe;
let env: Isolated;
let api: RunningApi;
let store: EventStore;
let provider: StripeProvider;
const sink = new RecordingSink();

beforeAll(async () => {
  fake = await startFakeStripe();
  fake.addCard({ id: 'pm_3ds', customer: 'cus_alice', outcome: 'requires_action' });
  env = await isolated({ env: { RG_STRIPE_SECRET_KEY: fake.secretKey, RG_STRIPE_WEBHOOK_SECRET: SECRET, RG_STRIPE_API_BASE: fake.apiBase } });
  api = await startApi(env.rt, { host: '127.0.0.1', paymentSink: sink });
  store = new EventStore(env.rt.nats, env.rt.names, env.rt.registry);
  provider = StripeProvider.fromConfig(env.rt.config.stripe as StripeConfig, env.rt.log);
});
afterAll(async () => {
  await api?.close();
  await env?.cleanup();
  await fake?.close();
});
beforeEach(() => {
  sink.calls = [];
});

let orders = 0;
/** A PaymentIntent as Stripe has it after a 3-D Secure charge ended: the provider charged the fake, the fake settled it. */
async function settledIntent(outcome: 'succeeded' | { decline: string }, orderId = `ord_w${++orders}`): Promise<Record<string, unknown>> {
  const charged = await provider.charge({
    orderId,
    userId: 'user-1',
    amount: money(1299n, 'EUR'),
    paymentMethod: { paymentMethodId: 'rg-pm-1', token: stripeToken('cus_alice', 'pm_3ds') },
    idempotencyKey: `${orderId}:charge:1`,
    description: 'Relaygrid Pro',
  });
  if (charged.status !== 'pending') throw new Error(`expected pending, got ${charged.status}`);
  return fake.settle(charged.providerRef, outcome);
}

function signed(event: Record<string, unknown>, opts: { secret?: string; timestamp?: number } = {}): { payload: string; header: string } {
  const payload = JSON.stringify(event, null, 2);
  return { payload, header: Stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret ?? SECRET, ...(opts.timestamp ? { timestamp: opts.timestamp } : {}) }) };
}

/** A delivery as Stripe makes one: the raw JSON body and its Stripe-Signature (the suite's fetch holds the answer to the OpenAPI document). */
async function deliver(payload: string, header: string | null, contentType = 'application/json; charset=utf-8'): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${api.url}/v1/billing/webhooks/stripe`, { method: 'POST', headers: { 'content-type': contentType, ...(header === null ? {} : { 'stripe-signature': header }) }, body: payload });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const subjectOf = (eventId: string) => env.rt.names.aggregate('billing', 'provider-event', `stripe-${eventId}`);
const recorded = async (eventId: string) => (await store.read(subjectOf(eventId))).events;
const billingMessages = async () => (await env.rt.nats.jsm.streams.info(env.rt.names.stream('billing'))).state.messages;

describe('Stripe webhook: a verified delivery', () => {
  it('payment_intent.succeeded records the payment on the order of its metadata, once, and the event in the billing stream', async () => {
    const intent = await settledIntent('succeeded', 'ord_paid');
    const event = fake.event('payment_intent.succeeded', intent);
    const { payload, header } = signed(event);
    const res = await deliver(payload, header);
    expect(res).toEqual({ status: 200, body: { eventId: event['id'], outcome: 'applied' } });
    expect(sink.calls).toEqual([{ kind: 'payment', orderId: 'ord_paid', payment: { provider: 'stripe', providerRef: intent['id'], amount: money(1299n, 'EUR') }, actor: { actor: 'provider:stripe', correlationId: expect.any(String) as unknown } }]);
    const events = await recorded(event['id'] as string);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: 'billing.ProviderEventReceived',
      meta: { actor: 'provider:stripe' },
      data: { provider: 'stripe', eventId: event['id'], eventType: 'payment_intent.succeeded', objectRef: intent['id'], orderId: 'ord_paid', outcome: 'applied', detail: null },
    });
  });

  it('the same event delivered again is answered 200 and changes nothing', async () => {
    const event = fake.event('payment_intent.succeeded', await settledIntent('succeeded'));
    const first = signed(event);
    expect((await deliver(first.payload, first.header)).body['outcome']).toBe('applied');
    const messages = await billingMessages();
    // Stripe signs each delivery anew: a fresh timestamp, the same event id.
    const again = signed(event, { timestamp: Math.floor(Date.now() / 1000) + 1 });
    expect(await deliver(again.payload, again.header)).toEqual({ status: 200, body: { eventId: event['id'], outcome: 'duplicate' } });
    expect(sink.calls).toHaveLength(1);
    expect(await billingMessages()).toBe(messages);
  });

  it('five concurrent deliveries of one event: one is applied, one event recorded', async () => {
    const event = fake.event('payment_intent.succeeded', await settledIntent('succeeded'));
    const { payload, header } = signed(event);
    const answers = await Promise.all(Array.from({ length: 5 }, () => deliver(payload, header)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.filter((a) => a.body['outcome'] === 'applied')).toHaveLength(1);
    expect(answers.filter((a) => a.body['outcome'] === 'duplicate')).toHaveLength(4);
    expect(await recorded(event['id'] as string)).toHaveLength(1);
    // Racing deliveries may each reach the order service before one records the event: it must be idempotent per providerRef (payment-sink.ts).
    expect(new Set(sink.calls.map((c) => (c.kind === 'payment' ? c.payment.providerRef : '')))).toEqual(new Set([(event['data'] as { object: { id: string } }).object.id]));
  });

  it('payment_intent.payment_failed records the failure with the decline reason and whether dunning should retry', async () => {
    const intent = await settledIntent({ decline: 'insufficient_funds' }, 'ord_failed');
    const event = fake.event('payment_intent.payment_failed', intent);
    const { payload, header } = signed(event);
    expect((await deliver(payload, header)).body['outcome']).toBe('applied');
    expect(sink.calls).toEqual([{ kind: 'failure', orderId: 'ord_failed', failure: { providerRef: intent['id'], reason: 'insufficient_funds', retryable: true }, actor: expect.objectContaining({ actor: 'provider:stripe' }) as unknown }]);
    expect((await recorded(event['id'] as string))[0]?.data).toMatchObject({ eventType: 'payment_intent.payment_failed', outcome: 'applied' });
  });

  it('an event type billing does not follow, or a PaymentIntent that names no order, is answered 200 and ignored', async () => {
    const messages = await billingMessages();
    for (const event of [fake.event('customer.created', { id: 'cus_new', object: 'customer' }), fake.event('payment_intent.succeeded', { ...(await settledIntent('succeeded')), metadata: {} })]) {
      const { payload, header } = signed(event);
      expect(await deliver(payload, header)).toEqual({ status: 200, body: { eventId: event['id'], outcome: 'ignored' } });
    }
    expect(sink.calls).toEqual([]);
    expect(await billingMessages()).toBe(messages);
  });

  it('an order that refuses (a rule) is recorded as rejected and answered 200: a redelivery cannot change the answer', async () => {
    sink.refuse.add('ord_gone');
    const event = fake.event('payment_intent.succeeded', await settledIntent('succeeded', 'ord_gone'));
    const { payload, header } = signed(event);
    expect((await deliver(payload, header)).body).toEqual({ eventId: event['id'], outcome: 'rejected' });
    expect((await recorded(event['id'] as string))[0]?.data).toMatchObject({ outcome: 'rejected', detail: 'order_not_found' });
    expect((await deliver(payload, header)).body['outcome']).toBe('duplicate');
    expect(sink.calls).toHaveLength(1);
  });

  it('an order service that fails records nothing and answers 500, so Stripe delivers again and the payment is not lost', async () => {
    sink.failOnce.add('ord_outage');
    const event = fake.event('payment_intent.succeeded', await settledIntent('succeeded', 'ord_outage'));
    const { payload, header } = signed(event);
    expect(await deliver(payload, header)).toEqual({ status: 500, body: { code: 'internal', message: 'internal error' } });
    expect(await recorded(event['id'] as string)).toEqual([]);
    expect((await deliver(payload, header)).body['outcome']).toBe('applied');
    expect(sink.calls.map((c) => c.orderId)).toEqual(['ord_outage', 'ord_outage']);
    expect(await recorded(event['id'] as string)).toHaveLength(1);
  });
});

describe('Stripe webhook: refused deliveries change nothing', () => {
  let event: Record<string, unknown>;
  let messages: number;
  beforeAll(async () => {
    event = fake.event('payment_intent.succeeded', await settledIntent('succeeded', 'ord_forged'));
  });
  beforeEach(async () => {
    messages = await billingMessages();
  });
  const refused = async (res: { status: number; body: Record<string, unknown> }, message: RegExp) => {
    expect(res.status).toBe(400);
    expect(res.body).toMatchObject({ code: 'invalid_signature', message: expect.stringMatching(message) as unknown });
    // The signing secret, or the part of it Stripe's library would quote, never leaves.
    expect(JSON.stringify(res.body)).not.toContain(SECRET.slice(-4));
    expect(sink.calls).toEqual([]);
    expect(await recorded(event['id'] as string)).toEqual([]);
    expect(await billingMessages()).toBe(messages);
  };

  it('signed with another secret', async () => {
    const { payload, header } = signed(event, { secret: 'whsec_someoneelsessecret00000000' });
    await refused(await deliver(payload, header), /does not match/);
  });

  it('a body changed after signing (the amount, say)', async () => {
    const { payload, header } = signed(event);
    await refused(await deliver(payload.replace('"amount_received": 1299', '"amount_received": 1'), header), /does not match/);
  });

  it('a captured delivery replayed later: the same event id and signature, its timestamp more than 300 s old', async () => {
    const { payload, header } = signed(event, { timestamp: Math.floor(Date.now() / 1000) - 301 });
    await refused(await deliver(payload, header), /more than 300 s old/);
  });

  it('no Stripe-Signature header', async () => {
    await refused(await deliver(signed(event).payload, null), /missing/);
  });

  it('a header that is not a Stripe signature', async () => {
    await refused(await deliver(signed(event).payload, 'v1=abc'), /does not match/);
  });

  it('a body that is not JSON is 415 before anything is read', async () => {
    const { payload, header } = signed(event);
    const res = await deliver(payload, header, 'text/plain');
    expect(res).toMatchObject({ status: 415, body: { code: 'unsupported_media_type' } });
    expect(await billingMessages()).toBe(messages);
  });
});

describe('Stripe webhook: the contract', () => {
  it('is public in the OpenAPI document, answering 200 with the outcome or 400 invalid_signature', async () => {
    const document = (await (await fetch(`${api.url}/docs`)).json()) as { paths: Record<string, Record<string, { security?: unknown[]; responses: Record<string, unknown> }>> };
    const operation = document.paths['/v1/billing/webhooks/stripe']?.['post'];
    expect(Object.keys(operation?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '413', '415', '500']));
    expect(Object.keys(operation?.responses ?? {})).not.toContain('401');
  });
});
