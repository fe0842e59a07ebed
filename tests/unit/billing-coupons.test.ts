import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError } from '../../producers/decider.js';
import { couponDecider, type CouponCommand, type CouponEventKey } from '../../producers/billing/coupon.decider.js';
import { normalizeCode, validateCouponInput } from '../../producers/billing/coupon-input.js';
import { discountOf, type CouponTerms } from '../../producers/billing/coupons.js';
import { KeyedQueue } from '../../producers/billing/keyed-queue.js';
import { money } from '../../producers/billing/money.js';
import { PersistentSet } from '../../producers/billing/persistent-set.js';
import { fold } from '../../producers/decider.js';
import { given } from '../support/decider-spec.js';

type E = DomainEvent<CouponEventKey>;

const at = new Date('2026-12-07T10:00:00Z');
const expiresAt = new Date('2026-12-31T00:00:00Z');
const definition = { kind: 'percent', percentOff: 20, amountOffMinor: null, currency: null, expiresAt, maxUses: 2 } as const;
const created: E = { type: 'billing.CouponCreated', data: { code: 'SPRING-20', ...definition, by: 'user:admin', createdAt: at } };
const fixed: E = { type: 'billing.CouponCreated', data: { code: 'TENOFF', kind: 'fixed', percentOff: null, amountOffMinor: 1000n, currency: 'EUR', expiresAt: null, maxUses: null, by: 'user:admin', createdAt: at } };
const redeemed = (orderId: string, code = 'SPRING-20', redeemedAt = at): E => ({ type: 'billing.CouponRedeemed', data: { code, orderId, userId: 'u1', redeemedAt } });
const released = (orderId: string): E => ({ type: 'billing.CouponRedemptionReleased', data: { code: 'SPRING-20', orderId, reason: 'order_failed', releasedAt: at } });
const disabled: E = { type: 'billing.CouponDisabled', data: { code: 'SPRING-20', by: 'user:admin', disabledAt: at } };
const redeem = (orderId: string, currency = 'EUR', when = at): CouponCommand => ({ type: 'Redeem', orderId, userId: 'u1', currency, at: when });
const release = (orderId: string): CouponCommand => ({ type: 'Release', orderId, reason: 'order_failed', at });

describe('coupon decider', () => {
  it('creates a coupon once', () => {
    const create: CouponCommand = { type: 'Create', code: 'SPRING-20', ...definition, by: 'user:admin', at };
    given(couponDecider).when(create).then([created]);
    given(couponDecider, [created]).when(create).thenError('coupon_exists');
  });

  it('redeems for an order; the same order again decides nothing', () => {
    given(couponDecider, [created]).when(redeem('o1')).then([redeemed('o1')]);
    given(couponDecider, [created, redeemed('o1')]).when(redeem('o1')).then([]);
  });

  it('keeps a held use idempotent even once the coupon is disabled, expired or exhausted', () => {
    given(couponDecider, [created, redeemed('o1'), redeemed('o2'), disabled]).when(redeem('o1', 'EUR', expiresAt)).then([]);
  });

  it('refuses an unknown coupon', () => {
    given(couponDecider).when(redeem('o1')).thenError('coupon_not_found');
    given(couponDecider).when(release('o1')).thenError('coupon_not_found');
    given(couponDecider).when({ type: 'Disable', by: 'user:admin', at }).thenError('coupon_not_found');
  });

  it('refuses a disabled coupon', () => {
    given(couponDecider, [created, disabled]).when(redeem('o1')).thenError('coupon_disabled');
  });

  it('refuses at and after the expiry, not before', () => {
    given(couponDecider, [created]).when(redeem('o1', 'EUR', expiresAt)).thenError('coupon_expired');
    const before = new Date(expiresAt.getTime() - 1);
    given(couponDecider, [created]).when(redeem('o1', 'EUR', before)).then([redeemed('o1', 'SPRING-20', before)]);
  });

  it('refuses once maxUses redemptions are held, and takes one again after a release', () => {
    given(couponDecider, [created, redeemed('o1'), redeemed('o2')]).when(redeem('o3')).thenError('coupon_exhausted');
    given(couponDecider, [created, redeemed('o1'), redeemed('o2'), released('o1')]).when(redeem('o3')).then([redeemed('o3')]);
  });

  it('a fixed coupon only for orders in its currency; a percent one for any', () => {
    given(couponDecider, [fixed]).when(redeem('o1', 'USD')).thenError('coupon_currency_mismatch');
    given(couponDecider, [fixed]).when(redeem('o1', 'EUR')).then([redeemed('o1', 'TENOFF')]);
    given(couponDecider, [created]).when(redeem('o1', 'JPY')).then([redeemed('o1')]);
  });

  it('releases a held use; an order holding none decides nothing', () => {
    given(couponDecider, [created, redeemed('o1')]).when(release('o1')).then([released('o1')]);
    given(couponDecider, [created]).when(release('o1')).then([]);
    given(couponDecider, [created, redeemed('o1'), released('o1')]).when(release('o1')).then([]);
  });

  it('disables once', () => {
    given(couponDecider, [created]).when({ type: 'Disable', by: 'user:admin', at }).then([disabled]);
    given(couponDecider, [created, disabled]).when({ type: 'Disable', by: 'user:admin', at }).then([]);
  });
});

describe('discountOf', () => {
  const percent = (percentOff: number): CouponTerms => ({ code: 'P', kind: 'percent', percentOff });
  const off = (amountMinor: bigint): CouponTerms => ({ code: 'F', kind: 'fixed', amountOff: money(amountMinor, 'EUR') });

  it('takes a percentage rounded half away from zero to the minor unit', () => {
    expect(discountOf(percent(20), 1000n)).toBe(200n);
    expect(discountOf(percent(15), 999n)).toBe(150n); // 149.85
    expect(discountOf(percent(10), 5n)).toBe(1n); // 0.5 rounds up
    expect(discountOf(percent(10), 4n)).toBe(0n); // 0.4 rounds down
    expect(discountOf(percent(100), 1234n)).toBe(1234n);
  });

  it('caps a fixed amount at the subtotal', () => {
    expect(discountOf(off(1000n), 5000n)).toBe(1000n);
    expect(discountOf(off(1000n), 700n)).toBe(700n);
  });

  it('is never negative', () => {
    expect(discountOf(off(1000n), 0n)).toBe(0n);
    expect(discountOf(off(1000n), -50n)).toBe(0n);
    expect(discountOf(percent(50), -50n)).toBe(0n);
  });
});

describe('coupon input', () => {
  const now = at;
  const refusal = (input: Record<string, unknown>) => {
    try {
      validateCouponInput(input, now);
    } catch (err) {
      if (err instanceof DomainError) return { code: err.code, field: err.details['field'] };
    }
    return undefined;
  };

  it('stores codes upper-case and refuses codes no coupon can have', () => {
    expect(normalizeCode(' spring-20 ')).toBe('SPRING-20');
    expect(normalizeCode('AB')).toBeNull();
    expect(normalizeCode('A'.repeat(33))).toBeNull();
    expect(normalizeCode('NO_UNDERSCORE')).toBeNull();
    expect(normalizeCode(42)).toBeNull();
  });

  it('checks each kind with its own fields, naming the one at fault', () => {
    expect(validateCouponInput({ code: 'tenoff', kind: 'fixed', amountOffMinor: 1000, currency: 'EUR' }, now)).toEqual({ code: 'TENOFF', kind: 'fixed', percentOff: null, amountOffMinor: 1000n, currency: 'EUR', expiresAt: null, maxUses: null });
    expect(refusal({ code: 'X-1', kind: 'percent' })).toEqual({ code: 'invalid_coupon', field: 'percentOff' });
    expect(refusal({ code: 'X-1', kind: 'percent', percentOff: 101 })).toEqual({ code: 'invalid_coupon', field: 'percentOff' });
    expect(refusal({ code: 'X-1', kind: 'percent', percentOff: 10, currency: 'EUR' })).toEqual({ code: 'invalid_coupon', field: 'currency' });
    expect(refusal({ code: 'X-1', kind: 'fixed', amountOffMinor: 100 })).toEqual({ code: 'invalid_coupon', field: 'currency' });
    expect(refusal({ code: 'X-1', kind: 'fixed', amountOffMinor: 100, currency: 'XYZ' })).toEqual({ code: 'invalid_coupon', field: 'currency' });
    expect(refusal({ code: 'X-1', kind: 'fixed', amountOffMinor: 0, currency: 'EUR' })).toEqual({ code: 'invalid_coupon', field: 'amountOffMinor' });
    expect(refusal({ code: 'X-1', kind: 'both' })).toEqual({ code: 'invalid_coupon', field: 'kind' });
    expect(refusal({ code: 'X', kind: 'percent', percentOff: 10 })).toEqual({ code: 'invalid_coupon', field: 'code' });
    expect(refusal({ code: 'X-1', kind: 'percent', percentOff: 10, maxUses: 0 })).toEqual({ code: 'invalid_coupon', field: 'maxUses' });
    expect(refusal({ code: 'X-1', kind: 'percent', percentOff: 10, expiresAt: '2026-12-07T09:00:00Z' })).toEqual({ code: 'invalid_coupon', field: 'expiresAt' });
  });
});

describe('keyed queue', () => {
  it('runs tasks of one key one at a time, in order, a failure not holding up the next', async () => {
    const queue = new KeyedQueue();
    let running = 0;
    let most = 0;
    const order: number[] = [];
    const task = (n: number) => async () => {
      running++;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 2));
      running--;
      order.push(n);
      if (n === 2) throw new Error('two');
      return n;
    };
    const results = await Promise.allSettled([1, 2, 3, 4].map((n) => queue.run('k', task(n))));
    expect(most).toBe(1);
    expect(order).toEqual([1, 2, 3, 4]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    await new Promise((resolve) => setTimeout(resolve, 0));
    expect(queue.size).toBe(0);
  });
});

describe('persistent set', () => {
  it('agrees with a native Set over random adds and deletes, and never changes an older version', () => {
    let seed = 7;
    const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const model = new Set<string>();
    let set = PersistentSet.EMPTY;
    const versions: [PersistentSet, string[]][] = [];
    for (let i = 0; i < 20_000; i++) {
      const key = `order-${Math.floor(random() * 5_000)}`;
      if (random() < 0.3) {
        model.delete(key);
        set = set.delete(key);
      } else {
        model.add(key);
        set = set.add(key);
      }
      if (i % 2_000 === 0) versions.push([set, [...model]]);
    }
    expect(set.size).toBe(model.size);
    const keys = Array.from({ length: 5_000 }, (_, k) => `order-${k}`);
    expect(keys.filter((k) => set.has(k))).toEqual(keys.filter((k) => model.has(k)));
    for (const [version, members] of versions) {
      expect(version.size).toBe(members.length);
      expect(keys.filter((k) => version.has(k)).sort()).toEqual(members.sort());
    }
  });

  it('answers the same set for an add of a member or a delete of a stranger', () => {
    const set = PersistentSet.EMPTY.add('a');
    expect(set.add('a')).toBe(set);
    expect(set.delete('b')).toBe(set);
    expect(PersistentSet.EMPTY.size).toBe(0);
  });

  it('folds a coupon with 100,000 redemptions in linear time', () => {
    const history: E[] = [created, ...Array.from({ length: 100_000 }, (_, i) => redeemed(`o${i}`))];
    const started = performance.now();
    const state = fold(couponDecider, couponDecider.initialState, history);
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(state.held.size).toBe(100_000);
    expect(state.held.has('o99999')).toBe(true);
  });
});
