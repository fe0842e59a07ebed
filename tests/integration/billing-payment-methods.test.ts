/**
 * `/v1/billing/payment-methods` through the real API, NATS, the billing
 * stream and the payment-methods projector, with the Stripe provider on the
 * local fake of Stripe's API (tests/support/fake-stripe.ts): saving, the
 * default and its hand-over, someone else's ids, the card-data guard,
 * resolve() as checkout will call it, and the card's details sealed under the
 * person's key (nothing in plain in the log; nothing left once forgotten).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CARD_DATA_MESSAGE } from '../../producers/api/card-data-guard.js';
import { requireMasterKey } from '../../infra/config.js';
import { openForDisplay } from '../../producers/billing/payment-method-details.js';
import { MAX_PAYMENT_METHODS, tokenDigest } from '../../producers/billing/payment-methods.decider.js';
import { stripeToken } from '../../producers/billing/providers/stripe.js';
import { DomainError } from '../../producers/decider.js';
import { PersonKeys } from '../../producers/identity/crypto/person-keys.js';
import { paymentMethodsProjection } from '../../projectors/billing/payment-methods.projection.js';
import { apiSuite, expectStatus } from '../support/api-suite.js';
import { startFakeStripe } from '../support/fake-stripe.js';
import { readLog } from '../support/log.js';

type Method = { id: string; provider: string; brand: string; last4: string; expMonth: number; expYear: number; isDefault: boolean; addedAt: string; sequence?: number };

// Before the suite: its configuration names the fake's port.
const fake = await startFakeStripe();
fake.addCard({ id: 'pm_visa', customer: 'cus_alice', brand: 'visa', last4: '4242', expMonth: 4, expYear: 2031 });
fake.addCard({ id: 'pm_master', customer: 'cus_alice', brand: 'mastercard', last4: '4444', expMonth: 9, expYear: 2032 });
fake.addCard({ id: 'pm_old', customer: 'cus_alice', brand: 'visa', last4: '0002', expMonth: 1, expYear: 2020 });
fake.addCard({ id: 'pm_bob', customer: 'cus_bob', brand: 'amex', last4: '0005', expMonth: 12, expYear: 2030 });
fake.addCard({ id: 'pm_erin', customer: 'cus_erin', brand: 'discover', last4: '1881', expMonth: 6, expYear: 2033 });

const VISA = stripeToken('cus_alice', 'pm_visa');
const MASTER = stripeToken('cus_alice', 'pm_master');

describe('payment methods', () => {
  const suite = apiSuite({ env: { RG_STRIPE_SECRET_KEY: fake.secretKey, RG_STRIPE_WEBHOOK_SECRET: 'whsec_relaygridtestsigningsecret0001', RG_STRIPE_API_BASE: fake.apiBase } });
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };

  beforeAll(async () => {
    alice = await suite.signedIn();
    bob = await suite.signedIn();
  });
  afterAll(async () => {
    await fake.close();
  });

  const save = (token: string, body: Record<string, unknown>) => suite.call<Method & { code?: string; field?: string; message?: string }>('POST', '/v1/billing/payment-methods', { token, body });
  const list = async (token: string) => expectStatus(await suite.call<{ paymentMethods: Method[] }>('GET', '/v1/billing/payment-methods', { token }), 200).body.paymentMethods;
  const recorded = async (userId: string) => (await suite.api.paymentMethods.deps.handler.store.read(suite.api.paymentMethods.deps.subject('payment-methods', userId))).events;

  let visa: Method;
  let master: Method;

  it('saves two methods with what Stripe says of them; the first is the default; never a token in an answer', async () => {
    const first = expectStatus(await save(alice.token, { provider: 'stripe', token: VISA }), 201);
    visa = first.body;
    expect(visa).toMatchObject({ provider: 'stripe', brand: 'visa', last4: '4242', expMonth: 4, expYear: 2031, isDefault: true });
    expect(first.headers.get('x-relaygrid-sequence')).toBe(String(visa.sequence));
    master = expectStatus(await save(alice.token, { provider: 'stripe', token: MASTER }), 201).body;
    expect(master).toMatchObject({ brand: 'mastercard', last4: '4444', isDefault: false });
    const methods = await list(alice.token);
    expect(methods.map((m) => [m.id, m.isDefault])).toEqual([
      [visa.id, true],
      [master.id, false],
    ]);
    expect(JSON.stringify(methods)).not.toContain('cus_alice');
    const row = await suite.env.rt.db.selectFrom('payment_methods').selectAll().where('id', '=', visa.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(row)).not.toContain('pm_visa');
  });

  it('keeps the token and the card in the log only sealed: neither the last four nor the token in plain bytes', async () => {
    const [event] = await readLog(suite.env.rt, suite.api.paymentMethods.deps.subject('payment-methods', alice.id));
    expect(event?.type).toBe('billing.PaymentMethodAdded');
    const data = event!.data as unknown as Record<string, unknown>;
    expect(Object.keys(data).sort()).toEqual(['addedAt', 'detailsSealed', 'makeDefault', 'paymentMethodId', 'provider', 'tokenDigest', 'userId']);
    expect(data).toMatchObject({ userId: alice.id, paymentMethodId: visa.id, provider: 'stripe', tokenDigest: tokenDigest('stripe', VISA), makeDefault: true });
    // Every byte Avro writes as is (strings and bytes), but the ids: random hex could hold four digits by chance.
    const plain = Object.entries(data)
      .filter(([name]) => name !== 'userId' && name !== 'paymentMethodId')
      .flatMap(([, value]) => (typeof value === 'string' ? [Buffer.from(value)] : Buffer.isBuffer(value) ? [value] : []));
    const bytes = Buffer.concat(plain);
    expect(bytes.length).toBeGreaterThan(64);
    for (const secret of ['4242', VISA, 'pm_visa', 'cus_alice', 'visa']) expect(bytes.includes(Buffer.from(secret)), secret).toBe(false);
  });

  it('answers the same token again with the method already saved, without asking Stripe', async () => {
    const asked = fake.requests.length;
    const again = expectStatus(await save(alice.token, { provider: 'stripe', token: VISA }), 201).body;
    expect(again).toMatchObject({ id: visa.id, isDefault: true });
    expect(fake.requests.length).toBe(asked);
    expect(await list(alice.token)).toHaveLength(2);
  });

  it('sets the default, and resolve() names it from the log', async () => {
    const chosen = expectStatus(await suite.call<Method>('POST', `/v1/billing/payment-methods/${master.id}/default`, { token: alice.token }), 200).body;
    expect(chosen).toMatchObject({ id: master.id, isDefault: true });
    expect((await list(alice.token)).map((m) => m.isDefault)).toEqual([false, true]);
    expect(await suite.api.paymentMethods.resolve(alice.id, null)).toEqual({ paymentMethodId: master.id, provider: 'stripe', token: MASTER });
    expect(await suite.api.paymentMethods.resolve(alice.id, visa.id)).toEqual({ paymentMethodId: visa.id, provider: 'stripe', token: VISA });
  });

  it('removing the default makes the other one the default', async () => {
    const res = expectStatus(await suite.call('DELETE', `/v1/billing/payment-methods/${master.id}`, { token: alice.token }), 204);
    expect(Number(res.headers.get('x-relaygrid-sequence'))).toBeGreaterThan(0);
    expect((await list(alice.token)).map((m) => [m.id, m.isDefault])).toEqual([[visa.id, true]]);
    expect(await suite.api.paymentMethods.resolve(alice.id, null)).toEqual({ paymentMethodId: visa.id, provider: 'stripe', token: VISA });
    await expect(suite.api.paymentMethods.resolve(alice.id, master.id)).rejects.toMatchObject({ code: 'payment_method_not_found' });
    expect(expectStatus(await suite.call('DELETE', `/v1/billing/payment-methods/${master.id}`, { token: alice.token }), 404).body).toMatchObject({ code: 'payment_method_not_found' });
  });

  it("answers another user's method exactly like an unknown one", async () => {
    const unknown = '0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b';
    const answers = [];
    for (const id of [visa.id, unknown]) {
      answers.push(expectStatus(await suite.call('DELETE', `/v1/billing/payment-methods/${id}`, { token: bob.token }), 404).body);
      answers.push(expectStatus(await suite.call('POST', `/v1/billing/payment-methods/${id}/default`, { token: bob.token }), 404).body);
    }
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(answers[0]).toEqual({ code: 'payment_method_not_found', message: 'no such payment method' });
    const refusal = await suite.api.paymentMethods.resolve(bob.id, visa.id).catch((e: unknown) => e);
    expect(refusal).toBeInstanceOf(DomainError);
    expect((refusal as DomainError).code).toBe('payment_method_not_found');
    expect(await suite.api.paymentMethods.resolve(bob.id, null)).toBeNull();
    expect(await list(bob.token)).toEqual([]);
    // Alice's method is untouched.
    expect((await list(alice.token)).map((m) => m.id)).toEqual([visa.id]);
  });

  it('refuses a card number in the token field, records nothing and does not echo it', async () => {
    const carol = await suite.signedIn();
    const asked = fake.requests.length;
    for (const card of ['4242 4242 4242 4242', '4242-4242-4242-4242', '4242424242424242']) {
      const res = expectStatus(await save(carol.token, { provider: 'stripe', token: card }), 400);
      expect(res.body).toEqual({ code: 'card_data_not_allowed', message: CARD_DATA_MESSAGE });
    }
    // Anywhere in the body, even where the schema would refuse the field.
    expect(expectStatus(await save(carol.token, { provider: 'stripe', token: VISA, cardNumber: 4242424242424242 }), 400).body.code).toBe('card_data_not_allowed');
    expect(fake.requests.length).toBe(asked);
    expect(await recorded(carol.id)).toEqual([]);
    expect(await list(carol.token)).toEqual([]);
  });

  it('refuses a provider that does not save cards, and an expired card', async () => {
    const manual = expectStatus(await save(bob.token, { provider: 'manual', token: 'anything' }), 400).body;
    expect(manual).toMatchObject({ code: 'invalid_payment_method', field: 'provider' });
    expect(manual.message).toContain('stripe');
    expect(expectStatus(await save(bob.token, { provider: 'paypal', token: 'x' }), 400).body).toMatchObject({ code: 'invalid_payment_method', field: 'provider' });
    expect(expectStatus(await save(alice.token, { provider: 'stripe', token: stripeToken('cus_alice', 'pm_old') }), 400).body).toMatchObject({ code: 'payment_method_expired' });
    // Bob's card is attached to his customer: saving Alice's under his customer is refused by the provider.
    expect(expectStatus(await save(bob.token, { provider: 'stripe', token: stripeToken('cus_bob', 'pm_visa') }), 400).body).toMatchObject({ code: 'invalid_payment_method', field: 'token' });
    expect(await recorded(bob.id)).toEqual([]);
  });

  it(`saves at most ${MAX_PAYMENT_METHODS}: then 409 payment_method_limit until one is removed`, async () => {
    const dave = await suite.signedIn();
    const tokens = Array.from({ length: MAX_PAYMENT_METHODS + 1 }, (_, i) => {
      fake.addCard({ id: `pm_dave${i}`, customer: 'cus_dave' });
      return stripeToken('cus_dave', `pm_dave${i}`);
    });
    const saved: Method[] = [];
    for (const token of tokens.slice(0, MAX_PAYMENT_METHODS)) saved.push(expectStatus(await save(dave.token, { provider: 'stripe', token }), 201).body);
    expect(expectStatus(await save(dave.token, { provider: 'stripe', token: tokens[MAX_PAYMENT_METHODS]! }), 409).body).toMatchObject({ code: 'payment_method_limit' });
    expectStatus(await suite.call('DELETE', `/v1/billing/payment-methods/${saved[3]!.id}`, { token: dave.token }), 204);
    const last = expectStatus(await save(dave.token, { provider: 'stripe', token: tokens[MAX_PAYMENT_METHODS]!, makeDefault: true }), 201).body;
    const methods = await list(dave.token);
    expect(methods).toHaveLength(MAX_PAYMENT_METHODS);
    expect(methods.filter((m) => m.isDefault).map((m) => m.id)).toEqual([last.id]);
  });

  it('forgets the card with the person: resolve() answers null, the read model shows nothing, a rebuild writes no details', async () => {
    const erin = await suite.signedIn();
    const token = stripeToken('cus_erin', 'pm_erin');
    const saved = expectStatus(await save(erin.token, { provider: 'stripe', token }), 201).body;
    expect(saved).toMatchObject({ brand: 'discover', last4: '1881', isDefault: true });
    expect(await suite.api.paymentMethods.resolve(erin.id, null)).toEqual({ paymentMethodId: saved.id, provider: 'stripe', token });

    await suite.api.identity.accounts.forget(erin.id, { actor: 'operator:test' });
    expect(await suite.api.paymentMethods.resolve(erin.id, null)).toBeNull();
    expect(await suite.api.paymentMethods.resolve(erin.id, saved.id)).toBeNull();
    // The row is still there (its default, its dates), but its details no longer open: nothing to list or show.
    const db = suite.env.rt.db;
    const keys = new PersonKeys(db, requireMasterKey(suite.env.rt.config));
    const row = await db.selectFrom('payment_methods').selectAll().where('id', '=', saved.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ user_id: erin.id, provider: 'stripe', is_default: true });
    expect(await keys.get(erin.id)).toBeUndefined();
    expect(openForDisplay(await keys.get(erin.id), erin.id, row.details_sealed)).toBeNull();
    for (const secret of ['1881', 'discover', 'pm_erin']) expect(JSON.stringify(row)).not.toContain(secret);
    expect(await suite.api.paymentMethods.list(erin.id)).toEqual([]);
    await expect(suite.api.paymentMethods.view(erin.id, saved.id)).rejects.toMatchObject({ code: 'payment_method_not_found' });

    // Projected again after the forget (a rebuild): the key is gone, the details are null.
    const events = await readLog(suite.env.rt, suite.api.paymentMethods.deps.subject('payment-methods', erin.id));
    await db.transaction().execute((trx) => paymentMethodsProjection.apply(trx, events, { keys }));
    const rebuilt = await db.selectFrom('payment_methods').selectAll().where('user_id', '=', erin.id).execute();
    expect(rebuilt).toEqual([expect.objectContaining({ id: saved.id, details_sealed: null, is_default: true })]);
  });

  it('needs a signed-in user', async () => {
    expectStatus(await suite.call('GET', '/v1/billing/payment-methods'), 401);
    expectStatus(await suite.call('POST', '/v1/billing/payment-methods', { body: { provider: 'stripe', token: VISA } }), 401);
  });
});
