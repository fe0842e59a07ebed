/**
 * Coupons end to end: the admin API over HTTP (create, list, view, disable,
 * refusals), and the use count under 50 concurrent redemptions — from one
 * process, and from two (two services on two command handlers over the same
 * store, each with its own cache and queue).
 */
import { describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { Coupons } from '../../producers/billing/coupons.js';
import { ContextDeps } from '../../producers/context-deps.js';
import { DomainError } from '../../producers/decider.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { apiSuite, expectStatus } from '../support/api-suite.js';
import { eventually } from '../support/isolated.js';
import { readLog } from '../support/log.js';

type Coupon = { code: string; kind: string; percentOff: number | null; amountOff: { amountMinor: number; currency: string } | null; uses: number; remaining: number | null; status: string; disabledAt: string | null; sequence?: number };

const ACTOR = { actor: 'operator:test' };
const PATH = '/v1/admin/billing/coupons';

/** The error code a promise was refused with, or 'ok'. */
async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof DomainError ? err.code : `${(err as Error).name}: ${(err as Error).message}`;
  }
}

const tally = (outcomes: string[]) => outcomes.reduce<Record<string, number>>((t, o) => ({ ...t, [o]: (t[o] ?? 0) + 1 }), {});

describe('billing coupons', () => {
  const suite = apiSuite();
  let n = 0;
  const newCode = (prefix: string) => `${prefix}-${++n}-${uuidv7().slice(-6)}`.toUpperCase();
  const admin = async () => (await suite.signedIn(['admin'])).token;
  const redeemedInLog = async (code: string) => (await readLog(suite.env.rt, suite.env.rt.names.aggregate('billing', 'coupon', code))).filter((e) => e.type === 'billing.CouponRedeemed').length;

  it('creates a coupon (codes are case-insensitive), lists it and views it with its uses', async () => {
    const token = await admin();
    const code = newCode('spring');
    const created = expectStatus(await suite.call<Coupon>('POST', PATH, { token, body: { code: code.toLowerCase(), kind: 'percent', percentOff: 20, maxUses: 10, expiresAt: '2099-01-01T00:00:00Z' } }), 201).body;
    expect(created).toMatchObject({ code, kind: 'percent', percentOff: 20, amountOff: null, uses: 0, remaining: 10, status: 'active', disabledAt: null });
    expect(created.sequence).toBeGreaterThan(0);

    const fixed = newCode('ten');
    expect(expectStatus(await suite.call<Coupon>('POST', PATH, { token, body: { code: fixed, kind: 'fixed', amountOffMinor: 1000, currency: 'EUR' } }), 201).body).toMatchObject({ amountOff: { amountMinor: 1000, currency: 'EUR' }, remaining: null });

    const listed = expectStatus(await suite.call<{ coupons: Coupon[] }>('GET', PATH, { token }), 200).body.coupons;
    expect(listed.map((c) => c.code)).toEqual(expect.arrayContaining([code, fixed]));

    await suite.api.coupons.redeem(code, { orderId: uuidv7(), userId: uuidv7(), currency: 'USD' }, ACTOR);
    const viewed = await eventually(async () => {
      const v = expectStatus(await suite.call<Coupon>('GET', `${PATH}/${code.toLowerCase()}`, { token }), 200).body;
      return v.uses === 1 ? v : undefined;
    });
    expect(viewed).toMatchObject({ code, uses: 1, remaining: 9 });
    expect(expectStatus(await suite.call('GET', `${PATH}/NO-SUCH-CODE`, { token }), 404).body).toMatchObject({ code: 'coupon_not_found' });
  });

  it('refuses bad input with 400 naming the field, and the same code twice with 409', async () => {
    const token = await admin();
    const refused = async (body: Record<string, unknown>) => expectStatus(await suite.call('POST', PATH, { token, body }), 400).body;
    expect(await refused({ code: newCode('p'), kind: 'percent' })).toMatchObject({ code: 'invalid_coupon', field: 'percentOff' });
    expect(await refused({ code: newCode('p'), kind: 'percent', percentOff: 150 })).toMatchObject({ code: 'invalid_coupon', field: 'percentOff' });
    expect(await refused({ code: newCode('f'), kind: 'fixed', amountOffMinor: 500 })).toMatchObject({ code: 'invalid_coupon', field: 'currency' });
    expect(await refused({ code: newCode('e'), kind: 'percent', percentOff: 5, expiresAt: '2000-01-01T00:00:00Z' })).toMatchObject({ code: 'invalid_coupon', field: 'expiresAt' });
    expect(await refused({ code: 'a_b', kind: 'percent', percentOff: 5 })).toMatchObject({ code: 'invalid_body', field: 'code' });
    expect(await refused({ code: newCode('x'), kind: 'percent', percentOff: 5, extra: 1 })).toMatchObject({ code: 'invalid_body', field: 'extra' });
    const code = newCode('dup');
    expectStatus(await suite.call('POST', PATH, { token, body: { code, kind: 'percent', percentOff: 5 } }), 201);
    expect(expectStatus(await suite.call('POST', PATH, { token, body: { code: code.toLowerCase(), kind: 'percent', percentOff: 6 } }), 409).body).toMatchObject({ code: 'coupon_exists' });
  });

  it('is for admins only: 403 for a client', async () => {
    const client = (await suite.signedIn(['client'])).token;
    expect(expectStatus(await suite.call('GET', PATH, { token: client }), 403).body).toMatchObject({ code: 'forbidden' });
    expect(expectStatus(await suite.call('POST', PATH, { token: client, body: { code: newCode('c'), kind: 'percent', percentOff: 5 } }), 403).body).toMatchObject({ code: 'forbidden' });
    expectStatus(await suite.call('DELETE', `${PATH}/ANY-CODE`, { token: client }), 403);
  });

  it('disables a coupon (204): the view shows it, redeem and peek refuse it; a held use stays idempotent', async () => {
    const token = await admin();
    const code = newCode('off');
    expectStatus(await suite.call('POST', PATH, { token, body: { code, kind: 'percent', percentOff: 10 } }), 201);
    const held = { orderId: uuidv7(), userId: uuidv7(), currency: 'EUR' };
    await suite.api.coupons.redeem(code, held, ACTOR);
    const gone = expectStatus(await suite.call('DELETE', `${PATH}/${code}`, { token }), 204);
    expect(Number(gone.headers.get('x-relaygrid-sequence'))).toBeGreaterThan(0);
    expect(expectStatus(await suite.call<Coupon>('GET', `${PATH}/${code}`, { token }), 200).body).toMatchObject({ status: 'disabled', uses: 1 });
    expectStatus(await suite.call('DELETE', `${PATH}/${code}`, { token }), 204);
    expect(expectStatus(await suite.call('DELETE', `${PATH}/NO-SUCH-CODE`, { token }), 404).body).toMatchObject({ code: 'coupon_not_found' });

    expect(await outcome(suite.api.coupons.redeem(code, { orderId: uuidv7(), userId: uuidv7(), currency: 'EUR' }, ACTOR))).toBe('coupon_disabled');
    expect(await outcome(suite.api.coupons.peek(code, 'EUR', new Date()))).toBe('coupon_disabled');
    expect(await suite.api.coupons.redeem(code, held, ACTOR)).toEqual({ code, kind: 'percent', percentOff: 10 });
  });

  it('peek and redeem refuse from the log: expired, another currency, unknown; peek changes nothing', async () => {
    const coupons = suite.api.coupons;
    const now = new Date();
    const code = newCode('eur');
    await coupons.create({ code, kind: 'fixed', amountOffMinor: 500, currency: 'EUR', expiresAt: new Date(now.getTime() + 60_000).toISOString(), maxUses: 1 }, ACTOR, now);
    const order = (currency: string) => ({ orderId: uuidv7(), userId: uuidv7(), currency });
    expect(await coupons.peek(code.toLowerCase(), 'EUR', now)).toEqual({ code, kind: 'fixed', amountOff: { amountMinor: 500n, currency: 'EUR' } });
    expect(await outcome(coupons.peek(code, 'USD', now))).toBe('coupon_currency_mismatch');
    expect(await outcome(coupons.redeem(code, order('USD'), ACTOR, now))).toBe('coupon_currency_mismatch');
    expect(await outcome(coupons.redeem(code, order('EUR'), ACTOR, new Date(now.getTime() + 60_000)))).toBe('coupon_expired');
    expect(await outcome(coupons.peek('NO-SUCH-CODE', 'EUR', now))).toBe('coupon_not_found');
    expect(await outcome(coupons.redeem('x', order('EUR'), ACTOR, now))).toBe('coupon_not_found');
    expect(await redeemedInLog(code)).toBe(0);
    // A quote of the one use left, then the use taken: the next quote says so.
    await coupons.redeem(code, order('EUR'), ACTOR, now);
    expect(await outcome(coupons.peek(code, 'EUR', now))).toBe('coupon_exhausted');
  });

  /** 50 distinct orders on a maxUses=10 coupon through `services` (round robin): 10 take a use, 40 are told it is exhausted, nothing conflicts. */
  async function race(services: Coupons[]) {
    const code = newCode('race');
    await services[0]!.create({ code, kind: 'percent', percentOff: 25, maxUses: 10 }, ACTOR);
    const orders = Array.from({ length: 50 }, () => uuidv7());
    const outcomes = await Promise.all(orders.map((orderId, i) => outcome(services[i % services.length]!.redeem(code, { orderId, userId: uuidv7(), currency: 'EUR' }, ACTOR))));
    expect(tally(outcomes)).toEqual({ ok: 10, coupon_exhausted: 40 });
    expect(await redeemedInLog(code)).toBe(10);

    // One use given back: exactly one more order gets it.
    const winner = orders[outcomes.indexOf('ok')]!;
    await services[services.length - 1]!.release(code, winner, 'order_failed', ACTOR);
    const again = await Promise.all([uuidv7(), uuidv7()].map((orderId, i) => outcome(services[i % services.length]!.redeem(code, { orderId, userId: uuidv7(), currency: 'EUR' }, ACTOR))));
    expect(again.sort()).toEqual(['coupon_exhausted', 'ok']);
    expect(await redeemedInLog(code)).toBe(11);
    const viewed = await eventually(async () => {
      const v = await suite.api.coupons.view(code);
      return v.uses === 10 && v.remaining === 0 ? v : undefined;
    });
    expect(viewed.status).toBe('exhausted');
  }

  it('50 concurrent redemptions of a maxUses=10 coupon in one process: exactly 10', async () => {
    await race([suite.api.coupons]);
  });

  it('50 concurrent redemptions from two processes (two command handlers): exactly 10', async () => {
    const store = suite.api.coupons.deps.handler.store;
    const other = () => new Coupons(new ContextDeps<'coupon'>('billing', new CommandHandler(store), suite.env.rt.db));
    await race([other(), other()]);
  });
});
