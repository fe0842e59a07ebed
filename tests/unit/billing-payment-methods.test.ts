/** Payment methods, the pure parts: the per-user decider (default, idempotency, limit), the token digest, the expiry rule, and the card-number scanner of the card-data guard. */
import { createHash } from 'node:crypto';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { bodyHasCardNumber, CARD_DATA_MESSAGE, cardDataGuard, hasCardNumber, luhnValid } from '../../producers/api/card-data-guard.js';
import { errorHandler } from '../../producers/api/errors.js';
import { isExpired, MAX_PAYMENT_METHODS, paymentMethodsDecider, tokenDigest, type PaymentMethodsCommand, type PaymentMethodsEventKey } from '../../producers/billing/payment-methods.decider.js';
import { fold } from '../../producers/decider.js';
import { given } from '../support/decider-spec.js';

type E = DomainEvent<PaymentMethodsEventKey>;

const at = new Date('2026-12-07T10:00:00Z');
const userId = 'u1';
/** The digest of card `id`'s token at stripe; the decider never sees the token itself. */
const digestOf = (id: string, provider = 'stripe') => tokenDigest(provider, `cus_a/pm_${id}`);
/** Stands for the sealed details: the decider only carries them into the event. */
const sealedOf = (id: string) => Buffer.from(`sealed ${id}`);

function addCommand(id: string, over: Partial<Extract<PaymentMethodsCommand, { type: 'Add' }>> = {}): PaymentMethodsCommand {
  return { type: 'Add', userId, paymentMethodId: id, provider: 'stripe', tokenDigest: digestOf(id), detailsSealed: sealedOf(id), makeDefault: false, at, ...over };
}

function added(id: string, makeDefault: boolean, over: Partial<E['data']> = {}): E {
  return { type: 'billing.PaymentMethodAdded', data: { userId, paymentMethodId: id, provider: 'stripe', tokenDigest: digestOf(id), detailsSealed: sealedOf(id), makeDefault, addedAt: at, ...over } } as E;
}

const removed = (id: string): E => ({ type: 'billing.PaymentMethodRemoved', data: { userId, paymentMethodId: id, removedAt: at } });
const changed = (id: string | null): E => ({ type: 'billing.DefaultPaymentMethodChanged', data: { userId, paymentMethodId: id, changedAt: at } });

describe('payment methods decider', () => {
  it('makes the first method the default, and a later one only when asked', () => {
    given(paymentMethodsDecider).when(addCommand('a')).then([added('a', true)]);
    given(paymentMethodsDecider, [added('a', true)]).when(addCommand('b')).then([added('b', false)]);
    given(paymentMethodsDecider, [added('a', true)]).when(addCommand('b', { makeDefault: true })).then([added('b', true)]);
    const state = fold(paymentMethodsDecider, paymentMethodsDecider.initialState, [added('a', true), added('b', true)]);
    expect(state.defaultId).toBe('b');
  });

  it('answers the same provider token with the method already saved: nothing new, or only the default asked for', () => {
    const history = [added('a', true), added('b', false)];
    given(paymentMethodsDecider, history).when(addCommand('c', { tokenDigest: digestOf('b') })).then([]);
    given(paymentMethodsDecider, history).when(addCommand('c', { tokenDigest: digestOf('b'), makeDefault: true })).then([changed('b')]);
    given(paymentMethodsDecider, history).when(addCommand('c', { tokenDigest: digestOf('a'), makeDefault: true })).then([]);
    // Another provider with the same reference is another method: the digest covers the provider.
    const other = { provider: 'other', tokenDigest: digestOf('b', 'other') };
    given(paymentMethodsDecider, history).when(addCommand('c', other)).then([added('c', false, other)]);
  });

  it(`saves at most ${MAX_PAYMENT_METHODS}, and a removed one frees its place`, () => {
    const full = Array.from({ length: MAX_PAYMENT_METHODS }, (_, i) => added(`m${i}`, i === 0));
    given(paymentMethodsDecider, full).when(addCommand('x')).thenError('payment_method_limit');
    // The same card again is not an eleventh.
    given(paymentMethodsDecider, full).when(addCommand('x', { tokenDigest: digestOf('m3') })).then([]);
    given(paymentMethodsDecider, [...full, removed('m3')]).when(addCommand('x')).then([added('x', false)]);
  });

  it('digests the token with its provider: sha256 hex of provider, newline, token', () => {
    expect(tokenDigest('stripe', 'cus_a/pm_b')).toBe(createHash('sha256').update('stripe\ncus_a/pm_b').digest('hex'));
    expect(tokenDigest('stripe', 'cus_a/pm_b')).not.toBe(tokenDigest('other', 'cus_a/pm_b'));
    expect(tokenDigest('stripe', 'cus_a/pm_b')).not.toContain('pm_b');
  });

  it('counts a card as expired once its expiry month is over; the current month is still good (the service refuses it)', () => {
    expect(isExpired({ expYear: 2026, expMonth: 11 }, at)).toBe(true);
    expect(isExpired({ expYear: 2025, expMonth: 12 }, at)).toBe(true);
    expect(isExpired({ expYear: 2026, expMonth: 12 }, at)).toBe(false);
    expect(isExpired({ expYear: 2026, expMonth: 12 }, new Date('2026-12-31T23:59:59Z'))).toBe(false);
    expect(isExpired({ expYear: 2026, expMonth: 12 }, new Date('2027-01-01T00:00:00Z'))).toBe(true);
  });

  it('removing the default hands it to the most recently added remaining method, or to none', () => {
    const history = [added('a', true), added('b', false), added('c', false)];
    given(paymentMethodsDecider, history).when({ type: 'Remove', userId, paymentMethodId: 'a', at }).then([removed('a'), changed('c')]);
    given(paymentMethodsDecider, history).when({ type: 'Remove', userId, paymentMethodId: 'b', at }).then([removed('b')]);
    given(paymentMethodsDecider, [added('a', true)]).when({ type: 'Remove', userId, paymentMethodId: 'a', at }).then([removed('a'), changed(null)]);
    const state = fold(paymentMethodsDecider, paymentMethodsDecider.initialState, [...history, removed('a'), changed('c'), removed('c'), changed('b')]);
    expect(state).toMatchObject({ defaultId: 'b', methods: [{ paymentMethodId: 'b' }] });
  });

  it('sets the default once; an unknown or removed method is not found', () => {
    const history = [added('a', true), added('b', false)];
    given(paymentMethodsDecider, history).when({ type: 'SetDefault', userId, paymentMethodId: 'b', at }).then([changed('b')]);
    given(paymentMethodsDecider, history).when({ type: 'SetDefault', userId, paymentMethodId: 'a', at }).then([]);
    for (const command of [
      { type: 'SetDefault' as const, userId, paymentMethodId: 'zz', at },
      { type: 'Remove' as const, userId, paymentMethodId: 'zz', at },
    ]) {
      given(paymentMethodsDecider, history).when(command).thenError('payment_method_not_found');
      given(paymentMethodsDecider).when(command).thenError('payment_method_not_found');
    }
    given(paymentMethodsDecider, [...history, removed('b')]).when({ type: 'SetDefault', userId, paymentMethodId: 'b', at }).thenError('payment_method_not_found');
    given(paymentMethodsDecider, [...history, removed('b')]).when({ type: 'Remove', userId, paymentMethodId: 'b', at }).thenError('payment_method_not_found');
  });
});

describe('the card-number scanner', () => {
  it('checks Luhn', () => {
    expect(luhnValid('4242424242424242')).toBe(true);
    expect(luhnValid('4242424242424241')).toBe(false);
    expect(luhnValid('378282246310005')).toBe(true); // Amex test number, 15 digits
  });

  it('finds a card number as people type it, and lets other digits pass', () => {
    for (const text of ['4242 4242 4242 4242', '4242-4242-4242-4242', '4242424242424242', 'card: 4242 4242 4242 4242 12/30 123', 'x4242424242424242y', '3782 822463 10005', '6011111111111117']) {
      expect(hasCardNumber(text), text).toBe(true);
    }
    for (const text of [
      '4242424242424241',
      '424242424242', // 12 digits
      '42424242424242424242', // 20 digits
      '0193a1b2-7c3d-7e4f-8a5b-6c7d8e9f0a1b',
      '12345678-1234-7234-8234-123456789012', // an all-decimal UUID
      'cus_Q8ZxKs4242/pm_1Pz4242abc',
      '4242  4242  4242  4242', // two spaces: not one number
      '1733580000',
      '',
    ]) {
      expect(hasCardNumber(text), text).toBe(false);
    }
  });

  it('walks the body: strings, numbers, keys, at any depth; bytes are not JSON', () => {
    expect(bodyHasCardNumber({ provider: 'stripe', token: '4242 4242 4242 4242' })).toBe(true);
    expect(bodyHasCardNumber({ a: [{ b: { c: 4242424242424242 } }] })).toBe(true);
    expect(bodyHasCardNumber({ '4242424242424242': true })).toBe(true);
    expect(bodyHasCardNumber('4242-4242-4242-4242')).toBe(true);
    let deep: unknown = '4242424242424242';
    for (let i = 0; i < 50_000; i++) deep = [deep];
    expect(bodyHasCardNumber(deep)).toBe(true);
    expect(bodyHasCardNumber({ provider: 'stripe', token: 'cus_a/pm_b', makeDefault: true, n: 4242424242424241 })).toBe(false);
    expect(bodyHasCardNumber(Buffer.from('4242424242424242'))).toBe(false);
    expect(bodyHasCardNumber(null)).toBe(false);
    expect(bodyHasCardNumber(undefined)).toBe(false);
  });
});

describe('the card-data guard', () => {
  /** A fastify app with the guard and the API's error handler, every request logged at trace into `lines`. */
  async function guardedApp(lines: string[]) {
    const logger: FastifyBaseLogger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
    const app = Fastify({ loggerInstance: logger });
    app.setErrorHandler(errorHandler);
    cardDataGuard(app);
    const echo = { schema: { body: { type: 'object', additionalProperties: false, properties: { token: { type: 'string', maxLength: 4 } } } } };
    app.post('/v1/billing/echo', echo, (request) => ({ got: request.body }));
    app.post('/v1/billing/fails', () => {
      throw new Error('a bug');
    });
    app.post('/v1/other', (request) => ({ got: request.body }));
    await app.ready();
    return app;
  }

  it('refuses a card number on billing routes before validation, without echoing or logging it', async () => {
    const lines: string[] = [];
    const app = await guardedApp(lines);
    const card = '4242 4242 4242 4242';
    const refused = await app.inject({ method: 'POST', url: '/v1/billing/echo', payload: { token: card } });
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toEqual({ code: 'card_data_not_allowed', message: CARD_DATA_MESSAGE });
    // A body that passes the guard and fails later (validation, a 500) is not logged either.
    expect((await app.inject({ method: 'POST', url: '/v1/billing/echo', payload: { token: '4242424242424241' } })).json()).toMatchObject({ code: 'invalid_body' });
    expect((await app.inject({ method: 'POST', url: '/v1/billing/fails', payload: { token: '4242424242424241' } })).statusCode).toBe(500);
    expect((await app.inject({ method: 'POST', url: '/v1/billing/echo', payload: `{"token": "${card}"`, headers: { 'content-type': 'application/json' } })).json()).toMatchObject({ code: 'invalid_json' });
    // Elsewhere the guard does not look.
    expect((await app.inject({ method: 'POST', url: '/v1/other', payload: { token: card } })).json()).toEqual({ got: { token: card } });
    await app.close();
    const log = lines.join('');
    expect(lines.length, 'requests were logged').toBeGreaterThan(0);
    expect(log).not.toMatch(/4242\D?4242\D?4242\D?424[12]/);
  });
});
