/** Prices as lines (reductions capped, one tax rounding per document), tax rates from configuration, and the dunning schedule. */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../producers/decider.js';
import { minorDigits } from '../../producers/billing/money.js';
import { nextAttemptAt, RETRY_AFTER_DAYS } from '../../producers/billing/payments.js';
import { price, pricedJson, type PriceInput } from '../../producers/billing/pricing.js';
import { parseTaxRates, taxFor } from '../../producers/billing/tax.js';

const plan = (amountMinor: bigint, currency = 'EUR') => ({ planId: 'pro', name: 'Pro', price: { amountMinor, currency } });
const DE = { country: 'DE', rateBasisPoints: 1900 };
const noTax = { country: null, rateBasisPoints: 0 };

describe('price', () => {
  it('prices the plan times the months, with one tax on the subtotal, rounded half away from zero', () => {
    // 2 × 11.99 = 23.98; 19% of it is 4.5562 → 4.56.
    expect(price({ plan: plan(1199n), months: 2, tax: DE })).toEqual({
      currency: 'EUR',
      lines: [{ kind: 'plan', description: 'Pro, 2 months', quantity: 2, unitAmountMinor: 1199n, amountMinor: 2398n }],
      subtotalMinor: 2398n,
      taxRateBasisPoints: 1900,
      taxCountry: 'DE',
      taxMinor: 456n,
      totalMinor: 2854n,
    });
    expect(price({ plan: plan(1199n), months: 1, tax: DE }).lines[0]?.description).toBe('Pro, 1 month');
  });

  it('rounds an exact half up, and a just-below half down', () => {
    // 2 × 12.25 = 24.50; 19% is 4.655 → 4.66.
    expect(price({ plan: plan(1225n), months: 2, tax: DE })).toMatchObject({ subtotalMinor: 2450n, taxMinor: 466n, totalMinor: 2916n });
    // 10% of 0.05 is 0.005 → 0.01; of 0.04, 0.004 → 0.
    expect(price({ plan: plan(5n), months: 1, tax: { country: 'XX', rateBasisPoints: 1000 } }).taxMinor).toBe(1n);
    expect(price({ plan: plan(4n), months: 1, tax: { country: 'XX', rateBasisPoints: 1000 } }).taxMinor).toBe(0n);
  });

  it('taxes the subtotal once, not each line (one rounding per document)', () => {
    // Lines 1.03 and 0.03 at 20%: per line 0.206 + 0.006 → 0.21 + 0.01 = 0.22; on the sum, 0.212 → 0.21.
    const priced = price({ plan: plan(103n), months: 1, overage: { description: 'Overage, 1 GiB', quantity: 1, unitAmountMinor: 3n }, tax: { country: 'FR', rateBasisPoints: 2000 } });
    expect(priced).toMatchObject({ subtotalMinor: 106n, taxMinor: 21n, totalMinor: 127n });
  });

  it('a zero rate has no tax country, whatever country was given', () => {
    expect(price({ plan: plan(1199n), months: 1, tax: { country: 'US', rateBasisPoints: 0 } })).toMatchObject({ taxRateBasisPoints: 0, taxCountry: null, taxMinor: 0n, totalMinor: 1199n });
    expect(price({ plan: plan(1199n), months: 1, tax: noTax })).toMatchObject({ taxCountry: null, taxMinor: 0n });
  });

  it('lists a discount as a negative line, capped at the subtotal', () => {
    const discount = (amountMinor: bigint) => ({ kind: 'discount' as const, description: 'Coupon TENOFF', amountMinor });
    expect(price({ plan: plan(1199n), months: 2, reductions: [discount(1000n)], tax: DE })).toMatchObject({
      lines: [{ kind: 'plan', amountMinor: 2398n }, { kind: 'discount', description: 'Coupon TENOFF', quantity: 1, unitAmountMinor: -1000n, amountMinor: -1000n }],
      subtotalMinor: 1398n,
      taxMinor: 266n, // 265.62
      totalMinor: 1664n,
    });
    expect(price({ plan: plan(1199n), months: 2, reductions: [discount(5000n)], tax: DE })).toMatchObject({
      lines: [{ kind: 'plan' }, { kind: 'discount', unitAmountMinor: -2398n, amountMinor: -2398n }],
      subtotalMinor: 0n,
      taxMinor: 0n,
      totalMinor: 0n,
    });
  });

  it('caps a proration credit at what the discount left: the subtotal never goes negative', () => {
    const input: PriceInput = {
      plan: plan(1199n),
      months: 2,
      reductions: [
        { kind: 'discount', description: 'Coupon', amountMinor: 398n },
        { kind: 'proration', description: 'Unused time of Basic', amountMinor: 5000n },
        { kind: 'discount', description: 'Nothing left to take', amountMinor: 100n },
      ],
      tax: DE,
    };
    const priced = price(input);
    expect(priced.lines.map((l) => [l.kind, l.amountMinor])).toEqual([['plan', 2398n], ['discount', -398n], ['proration', -2000n]]);
    expect(priced).toMatchObject({ subtotalMinor: 0n, taxMinor: 0n, totalMinor: 0n });
    expect(priced.lines.reduce((sum, l) => sum + l.amountMinor, 0n)).toBe(priced.subtotalMinor);
  });

  it('adds an overage line of quantity × unit; none for zero units', () => {
    const overage = { description: 'Overage, 7 GiB', quantity: 7, unitAmountMinor: 150n };
    const priced = price({ plan: plan(1199n), months: 1, overage, tax: noTax });
    expect(priced.lines[1]).toEqual({ kind: 'overage', description: 'Overage, 7 GiB', quantity: 7, unitAmountMinor: 150n, amountMinor: 1050n });
    expect(priced.subtotalMinor).toBe(2249n);
    expect(price({ plan: plan(1199n), months: 1, overage: { ...overage, quantity: 0 }, tax: noTax }).lines).toHaveLength(1);
    expect(price({ plan: plan(1199n), months: 1, overage: null, tax: noTax }).lines).toHaveLength(1);
  });

  it('keeps a currency without minor digits (JPY) in whole yen', () => {
    expect(minorDigits('JPY')).toBe(0);
    // 3 × ¥980 = ¥2940; 8% is ¥235.2 → ¥235.
    const priced = price({ plan: plan(980n, 'JPY'), months: 3, tax: { country: 'JP', rateBasisPoints: 800 } });
    expect(priced).toMatchObject({ currency: 'JPY', subtotalMinor: 2940n, taxMinor: 235n, totalMinor: 3175n });
    for (const amount of [priced.subtotalMinor, priced.taxMinor, priced.totalMinor, ...priced.lines.map((l) => l.amountMinor)]) expect(typeof amount).toBe('bigint');
    expect(Object.values(pricedJson(priced)).filter((v) => typeof v === 'number').every(Number.isInteger)).toBe(true);
  });

  it('answers JSON with integer amounts', () => {
    const priced = price({ plan: plan(1199n), months: 2, reductions: [{ kind: 'discount', description: 'Coupon', amountMinor: 100n }], tax: DE });
    const json = pricedJson(priced);
    expect(json).toEqual({
      currency: 'EUR',
      lines: [
        { kind: 'plan', description: 'Pro, 2 months', quantity: 2, unitAmountMinor: 1199, amountMinor: 2398 },
        { kind: 'discount', description: 'Coupon', quantity: 1, unitAmountMinor: -100, amountMinor: -100 },
      ],
      subtotalMinor: 2298,
      taxRateBasisPoints: 1900,
      taxCountry: 'DE',
      taxMinor: 437, // 436.62
      totalMinor: 2735,
    });
    expect(() => JSON.stringify(json)).not.toThrow();
  });
});

describe('tax rates', () => {
  it('reads percents with up to two decimals as basis points', () => {
    expect([...parseTaxRates('DE=19,FR=20,CH=8.1,HU=27')]).toEqual([['DE', 1900], ['FR', 2000], ['CH', 810], ['HU', 2700]]);
    expect(parseTaxRates('XX=8.05').get('XX')).toBe(805);
    expect(parseTaxRates('XX=0').get('XX')).toBe(0);
    expect([...parseTaxRates(' DE=19 , ,FR=20 ')]).toEqual([['DE', 1900], ['FR', 2000]]);
    expect(parseTaxRates(undefined).size).toBe(0);
    expect(parseTaxRates('').size).toBe(0);
  });

  it('refuses a bad entry, naming it and not the rest of the value', () => {
    for (const bad of ['de=19', 'DEU=19', 'DE', 'DE=', 'DE=100', 'DE=19.123', 'DE=19,5', 'DE=-1', 'DE=1e1']) {
      const entry = bad === 'DE=19,5' ? '5' : bad;
      expect(() => parseTaxRates(`FR=20,${bad}`), bad).toThrow(`"${entry}"`);
    }
    expect(() => parseTaxRates('FR=20,de=19')).toThrow(/^"de=19" is not COUNTRY=PERCENT \([^"=]*\)$/);
  });

  it('asks for the country once any rate is set, and takes an unlisted one at 0', () => {
    const rates = parseTaxRates('DE=19,FR=20');
    expect(taxFor(rates, 'DE', 'invalid_checkout')).toEqual({ country: 'DE', rateBasisPoints: 1900 });
    expect(taxFor(rates, 'US', 'invalid_checkout')).toEqual({ country: 'US', rateBasisPoints: 0 });
    const refusal = (country: unknown) => {
      try {
        taxFor(rates, country, 'invalid_quote');
      } catch (err) {
        if (err instanceof DomainError) return { code: err.code, field: err.details['field'] };
      }
      return undefined;
    };
    for (const country of [undefined, null, 'de', 'DEU', 'D', 49, '']) expect(refusal(country), String(country)).toEqual({ code: 'invalid_quote', field: 'country' });
  });

  it('with no rates configured, no country is needed, and a given one is still checked', () => {
    const none = parseTaxRates('');
    expect(taxFor(none, undefined, 'invalid_quote')).toEqual({ country: null, rateBasisPoints: 0 });
    expect(taxFor(none, 'DE', 'invalid_quote')).toEqual({ country: 'DE', rateBasisPoints: 0 });
    expect(() => taxFor(none, 'de', 'invalid_quote')).toThrow(DomainError);
  });
});

describe('dunning schedule', () => {
  it('retries 1, 3 and 5 days after the first failure, then gives up', () => {
    expect(RETRY_AFTER_DAYS).toEqual([1, 3, 5]);
    const first = new Date('2026-12-07T10:00:00Z');
    expect(nextAttemptAt(first, 1)).toEqual(new Date('2026-12-08T10:00:00Z'));
    expect(nextAttemptAt(first, 2)).toEqual(new Date('2026-12-10T10:00:00Z'));
    expect(nextAttemptAt(first, 3)).toEqual(new Date('2026-12-12T10:00:00Z'));
    expect(nextAttemptAt(first, 4)).toBeNull();
  });
});
