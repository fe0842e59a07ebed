import { describe, expect, it } from 'vitest';
import { unusedCredit } from '../../producers/billing/plan-changes.js';

const period = { start: new Date('2027-04-01T00:00:00Z'), end: new Date('2027-05-01T00:00:00Z') };
const GiB = 1024n ** 3n;

describe('the credit for the unused part of a paid period', () => {
  it('is the share of time left when the bytes are unlimited or barely used', () => {
    expect(unusedCredit(1000n, period, new Date('2027-04-16T00:00:00Z'), { used: 0n, total: null })).toBe(500n);
    expect(unusedCredit(1000n, period, new Date('2027-04-16T00:00:00Z'), { used: GiB, total: 10n * GiB })).toBe(500n);
  });

  it('is the share of bytes left when less of them is left than of time: spent allowance is never credited', () => {
    // Nine of ten GiB used in the first day: 10% of the bytes are left, 97% of the time.
    expect(unusedCredit(1000n, period, new Date('2027-04-02T00:00:00Z'), { used: 9n * GiB, total: 10n * GiB })).toBe(100n);
    expect(unusedCredit(1000n, period, new Date('2027-04-02T00:00:00Z'), { used: 12n * GiB, total: 10n * GiB })).toBe(0n);
  });

  it('is nothing after the period, for nothing paid, and never negative', () => {
    expect(unusedCredit(1000n, period, new Date('2027-05-02T00:00:00Z'), { used: 0n, total: null })).toBe(0n);
    expect(unusedCredit(0n, period, new Date('2027-04-02T00:00:00Z'), { used: 0n, total: null })).toBe(0n);
  });
});
