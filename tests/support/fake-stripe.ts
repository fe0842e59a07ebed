/**
 * A local stand-in for Stripe's API, for tests only. Stripe is a remote SaaS
 * these machines cannot reach, so the provider's tests point the official
 * `stripe` client (RG_STRIPE_API_BASE) at this node:http server on an
 * ephemeral loopback port instead. It answers the few endpoints the provider
 * calls, in Stripe's shapes, with Stripe's behaviours that matter to billing:
 *
 * - `Authorization: Bearer <secret key>` is checked; a wrong key gets Stripe's
 *   401, whose message quotes the key's last four characters as Stripe's does
 *   (so a test can prove the provider never passes that text on);
 * - `Idempotency-Key`: the same key with the same parameters answers the
 *   first answer again (status and body, `Idempotent-Replayed: true`), with
 *   other parameters Stripe's `idempotency_error`; only requests that ran are
 *   remembered, as at Stripe;
 * - per payment method, a test scripts the outcome of a confirmation:
 *   succeed, processing, requires_action (3-D Secure), a decline with a
 *   decline code (402 card_error with the PaymentIntent); and a test can
 *   make the next requests fail with Stripe's 500 `api_error`, which the
 *   client retries with the same Idempotency-Key;
 * - a test can delay the answers to PaymentIntent creations: the intent is
 *   made (and its key remembered) at once, the answer waits, so a client
 *   killed meanwhile has charged without learning it; `created` lists every
 *   PaymentIntent a request made, by its key (a replay makes none).
 *
 * Everything else in the tests (the client, its HTTP, the webhook
 * signatures made by the package's own generateTestHeaderString) is real.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';

export type ConfirmOutcome = 'succeed' | 'processing' | 'requires_action' | { decline: string };

export interface FakeCard {
  id: string;
  customer: string | null;
  brand?: string;
  last4?: string;
  expMonth?: number;
  expYear?: number;
  outcome?: ConfirmOutcome;
}

export interface SeenRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  params: Record<string, unknown>;
  replayed: boolean;
}

type Json = Record<string, unknown>;

interface Stored {
  fingerprint: string;
  status: number;
  body: Json;
}

/** Stripe's error codes that are their own `code`; other declines are `card_declined` with the reason in `decline_code`. */
const OWN_CODE = new Set(['expired_card', 'incorrect_cvc', 'incorrect_number', 'processing_error', 'authentication_required']);

const id = (prefix: string) => `${prefix}_${randomBytes(12).toString('base64url').replace(/[-_]/g, 'x')}`;
const now = () => Math.floor(Date.now() / 1000);

/** `a[b][c]=v&x[]=1` as Stripe's client form-encodes parameters, back into objects (array indexes as keys). */
export function parseForm(body: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const pair of body.split('&').filter(Boolean)) {
    const [rawKey = '', rawValue = ''] = pair.split('=');
    const key = decodeURIComponent(rawKey.replace(/\+/g, ' '));
    const value = decodeURIComponent(rawValue.replace(/\+/g, ' '));
    const path = key.replace(/\]/g, '').split('[');
    let at = out;
    path.forEach((part, i) => {
      const name = part === '' ? String(Object.keys(at).length) : part;
      if (i === path.length - 1) at[name] = value;
      else at = (at[name] ??= {}) as Record<string, unknown>;
    });
  }
  return out;
}

function stripeError(status: number, error: Json): { status: number; body: Json } {
  return { status, body: { error: { ...error, request_log_url: 'https://dashboard.stripe.com/test/logs/req_fake' } } };
}

export class FakeStripe {
  readonly secretKey: string;
  readonly requests: SeenRequest[] = [];
  readonly intents = new Map<string, Json>();
  readonly refunds = new Map<string, Json>();
  /** Every PaymentIntent creation that ran, in order (replays are not creations). */
  readonly created: { idempotencyKey: string | undefined; intentId: string; status: string }[] = [];
  private intentDelayMs = 0;
  private readonly cards = new Map<string, FakeCard>();
  private readonly idempotent = new Map<string, Stored>();
  private readonly server = createServer((req, res) => void this.serve(req, res));
  private port = 0;
  private failing = 0;

  constructor(opts: { secretKey?: string } = {}) {
    this.secretKey = opts.secretKey ?? `sk_test_${randomBytes(18).toString('hex')}`;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', resolve);
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** RG_STRIPE_API_BASE for this server. */
  get apiBase(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  /** A saved card; `outcome` is what confirming a PaymentIntent with it does (default: succeed). */
  addCard(card: FakeCard): void {
    this.cards.set(card.id, card);
  }

  /** The next `count` authenticated requests answer 500 api_error, before they run (nothing is remembered for their keys). */
  failNext(count: number): void {
    this.failing = count;
  }

  /** Answers to PaymentIntent creations wait `ms` after the intent is made (0: at once). */
  delayIntents(ms: number): void {
    this.intentDelayMs = ms;
  }

  /** The card's outcome from now on. */
  script(paymentMethodId: string, outcome: ConfirmOutcome): void {
    const card = this.cards.get(paymentMethodId);
    if (!card) throw new Error(`no card ${paymentMethodId}`);
    card.outcome = outcome;
  }

  /** What Stripe would do later, off the request path: a waiting PaymentIntent ends, as its webhook will then say. */
  settle(intentId: string, outcome: 'succeeded' | { decline: string }): Json {
    const intent = this.intents.get(intentId);
    if (!intent) throw new Error(`no PaymentIntent ${intentId}`);
    if (outcome === 'succeeded') Object.assign(intent, { status: 'succeeded', amount_received: intent['amount'], next_action: null });
    else Object.assign(intent, { status: 'requires_payment_method', next_action: null, last_payment_error: this.declineOf(outcome.decline, intent) });
    return structuredClone(intent);
  }

  /** A Stripe event about an object, as a webhook delivers it. */
  event(type: string, object: Json, opts: { id?: string; created?: number } = {}): Json {
    return {
      id: opts.id ?? id('evt'),
      object: 'event',
      api_version: Stripe.API_VERSION,
      created: opts.created ?? now(),
      data: { object },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    };
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const params = method === 'GET' ? parseForm(url.search.slice(1)) : parseForm(Buffer.concat(chunks).toString('utf8'));
    const idempotencyKey = typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : undefined;
    const seen: SeenRequest = { method, path: url.pathname, idempotencyKey, params, replayed: false };
    this.requests.push(seen);
    const send = (status: number, body: Json, replayed = false) => {
      res.writeHead(status, { 'content-type': 'application/json', 'request-id': `req_${randomBytes(7).toString('hex')}`, ...(replayed ? { 'idempotent-replayed': 'true' } : {}) });
      res.end(JSON.stringify(body));
    };

    const auth = this.authenticate(req.headers.authorization);
    if (auth) return send(auth.status, auth.body);
    if (this.failing > 0) {
      this.failing--;
      const failed = stripeError(500, { type: 'api_error', message: 'An unknown error occurred' });
      return send(failed.status, failed.body);
    }
    const fingerprint = createHash('sha256').update(`${method} ${url.pathname} ${JSON.stringify(params)}`).digest('hex');
    if (idempotencyKey && method === 'POST') {
      const stored = this.idempotent.get(idempotencyKey);
      if (stored && stored.fingerprint !== fingerprint) {
        const refused = stripeError(400, {
          type: 'idempotency_error',
          message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
        });
        return send(refused.status, refused.body);
      }
      if (stored) {
        seen.replayed = true;
        return send(stored.status, stored.body, true);
      }
    }
    const { status, body, ran } = this.route(method, url.pathname, params);
    // Stripe keeps the result of a request that ran (a decline too), not of one refused before it started.
    if (idempotencyKey && method === 'POST' && ran) this.idempotent.set(idempotencyKey, { fingerprint, status, body });
    if (method === 'POST' && url.pathname === '/v1/payment_intents' && ran) {
      const intent = (status === 200 ? body : (body['error'] as Json | undefined)?.['payment_intent']) as Json | undefined;
      if (intent) this.created.push({ idempotencyKey, intentId: String(intent['id']), status: String(intent['status']) });
      if (this.intentDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, this.intentDelayMs));
    }
    send(status, body);
  }

  private authenticate(header: string | undefined): { status: number; body: Json } | undefined {
    const key = header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
    if (!key) return stripeError(401, { type: 'invalid_request_error', message: 'You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth.' });
    if (key !== this.secretKey) return stripeError(401, { type: 'invalid_request_error', message: `Invalid API Key provided: ${key.slice(0, 8)}${'*'.repeat(Math.max(key.length - 12, 0))}${key.slice(-4)}` });
    return undefined;
  }

  private route(method: string, path: string, params: Record<string, unknown>): { status: number; body: Json; ran: boolean } {
    if (method === 'POST' && path === '/v1/payment_intents') return this.createIntent(params);
    if (method === 'POST' && path === '/v1/refunds') return this.createRefund(params);
    const pm = /^\/v1\/payment_methods\/([^/]+)$/.exec(path);
    if (method === 'GET' && pm?.[1]) return this.paymentMethod(decodeURIComponent(pm[1]));
    return { ...stripeError(404, { type: 'invalid_request_error', message: `Unrecognized request URL (${method}: ${path}).` }), ran: false };
  }

  private missing(kind: string, value: unknown, param: string): { status: number; body: Json; ran: boolean } {
    return { ...stripeError(400, { type: 'invalid_request_error', code: 'resource_missing', param, message: `No such ${kind}: '${String(value)}'` }), ran: true };
  }

  private declineOf(reason: string, intent: Json): Json {
    return {
      type: 'card_error',
      code: OWN_CODE.has(reason) ? reason : 'card_declined',
      decline_code: reason,
      message: reason === 'insufficient_funds' ? 'Your card has insufficient funds.' : 'Your card was declined.',
      payment_method: { id: intent['payment_method'], object: 'payment_method' },
    };
  }

  private createIntent(params: Record<string, unknown>): { status: number; body: Json; ran: boolean } {
    const amount = Number(params['amount']);
    if (!Number.isInteger(amount) || amount < 1) return { ...stripeError(400, { type: 'invalid_request_error', code: 'parameter_invalid_integer', param: 'amount', message: 'Invalid integer' }), ran: false };
    if (typeof params['currency'] !== 'string' || params['currency'] !== params['currency'].toLowerCase()) {
      return { ...stripeError(400, { type: 'invalid_request_error', code: 'parameter_invalid', param: 'currency', message: 'Invalid currency' }), ran: false };
    }
    const card = this.cards.get(String(params['payment_method']));
    if (!card) return this.missing('PaymentMethod', params['payment_method'], 'payment_method');
    if (card.customer !== params['customer']) {
      return { ...stripeError(400, { type: 'invalid_request_error', code: 'resource_missing', param: 'payment_method', message: `The PaymentMethod ${card.id} does not belong to the Customer you supplied.` }), ran: true };
    }
    const intent: Json = {
      id: id('pi'),
      object: 'payment_intent',
      amount,
      amount_received: 0,
      currency: params['currency'],
      customer: params['customer'],
      payment_method: card.id,
      confirmation_method: 'automatic',
      capture_method: 'automatic',
      description: params['description'] ?? null,
      metadata: params['metadata'] ?? {},
      created: now(),
      livemode: false,
      last_payment_error: null,
      next_action: null,
      status: 'requires_confirmation',
    };
    this.intents.set(intent['id'] as string, intent);
    if (params['confirm'] !== 'true') return { status: 200, body: structuredClone(intent), ran: true };
    const outcome = card.outcome ?? 'succeed';
    if (outcome === 'succeed') Object.assign(intent, { status: 'succeeded', amount_received: amount, latest_charge: id('ch') });
    else if (outcome === 'processing') intent['status'] = 'processing';
    else if (outcome === 'requires_action') Object.assign(intent, { status: 'requires_action', next_action: { type: 'use_stripe_sdk', use_stripe_sdk: {} } });
    else {
      const decline = this.declineOf(outcome.decline, intent);
      Object.assign(intent, { status: 'requires_payment_method', last_payment_error: decline });
      return { ...stripeError(402, { ...decline, payment_intent: structuredClone(intent) }), ran: true };
    }
    return { status: 200, body: structuredClone(intent), ran: true };
  }

  private createRefund(params: Record<string, unknown>): { status: number; body: Json; ran: boolean } {
    const intent = this.intents.get(String(params['payment_intent']));
    if (!intent) return this.missing('payment_intent', params['payment_intent'], 'payment_intent');
    const refunded = [...this.refunds.values()].filter((r) => r['payment_intent'] === intent['id']).reduce((sum, r) => sum + Number(r['amount']), 0);
    const left = Number(intent['amount_received']) - refunded;
    const amount = params['amount'] === undefined ? left : Number(params['amount']);
    if (intent['status'] !== 'succeeded') {
      return { ...stripeError(400, { type: 'invalid_request_error', code: 'charge_not_refundable', message: `This PaymentIntent (${String(intent['id'])}) does not have a successful charge to refund.` }), ran: true };
    }
    if (left <= 0) return { ...stripeError(400, { type: 'invalid_request_error', code: 'charge_already_refunded', message: 'Charge has already been refunded.' }), ran: true };
    if (amount > left) return { ...stripeError(400, { type: 'invalid_request_error', code: 'amount_too_large', param: 'amount', message: 'Refund amount is greater than unrefunded amount on charge' }), ran: true };
    const refund: Json = {
      id: id('re'),
      object: 'refund',
      amount,
      currency: intent['currency'],
      payment_intent: intent['id'],
      charge: intent['latest_charge'] ?? null,
      metadata: params['metadata'] ?? {},
      created: now(),
      status: 'succeeded',
    };
    this.refunds.set(refund['id'] as string, refund);
    return { status: 200, body: structuredClone(refund), ran: true };
  }

  private paymentMethod(pmId: string): { status: number; body: Json; ran: boolean } {
    const card = this.cards.get(pmId);
    if (!card) return { ...stripeError(404, { type: 'invalid_request_error', code: 'resource_missing', param: 'payment_method', message: `No such PaymentMethod: '${pmId}'` }), ran: false };
    return {
      status: 200,
      body: {
        id: card.id,
        object: 'payment_method',
        type: 'card',
        customer: card.customer,
        created: now(),
        livemode: false,
        metadata: {},
        billing_details: { address: null, email: null, name: null, phone: null },
        card: { brand: card.brand ?? 'visa', last4: card.last4 ?? '4242', exp_month: card.expMonth ?? 12, exp_year: card.expYear ?? 2030, country: 'US', funding: 'credit', fingerprint: 'fake' },
      },
      ran: false,
    };
  }
}

export async function startFakeStripe(opts: { secretKey?: string } = {}): Promise<FakeStripe> {
  return new FakeStripe(opts).start();
}
