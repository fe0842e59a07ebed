import { describe, expect, it } from 'vitest';
import { nextRetryAt, renewalDueAt, RETRY_CAP_MS } from '../../producers/edge/acme/renewal.js';

const DAY = 86_400_000;
const MIN = 60_000;

describe('renewalDueAt', () => {
  it('is two thirds of a 90-day lifetime: 30 days before expiry', () => {
    const notBefore = new Date('2026-01-01T00:00:00Z');
    const notAfter = new Date(notBefore.getTime() + 90 * DAY);
    expect(renewalDueAt(notBefore, notAfter)).toEqual(new Date(notBefore.getTime() + 60 * DAY));
  });

  it('scales with short-lived certificates (6 days: renew with 2 left)', () => {
    const notBefore = new Date('2026-03-01T12:00:00Z');
    const notAfter = new Date(notBefore.getTime() + 6 * DAY);
    expect(notAfter.getTime() - renewalDueAt(notBefore, notAfter).getTime()).toBe(2 * DAY);
  });

  it('refuses a lifetime that is not positive', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    expect(() => renewalDueAt(at, at)).toThrow(RangeError);
    expect(() => renewalDueAt(at, new Date(at.getTime() - 1))).toThrow(RangeError);
  });
});

describe('nextRetryAt', () => {
  const now = new Date('2026-06-01T00:00:00Z');
  const wait = (attempt: number) => nextRetryAt(attempt, now).getTime() - now.getTime();

  it('waits 1 minute after the first failure and doubles', () => {
    expect([1, 2, 3, 4, 5].map(wait)).toEqual([1, 2, 4, 8, 16].map((m) => m * MIN));
  });

  it('is capped at 6 hours, also for absurd attempt counts', () => {
    expect(wait(9)).toBe(256 * MIN);
    expect(wait(10)).toBe(RETRY_CAP_MS);
    expect(wait(1_000)).toBe(6 * 60 * MIN);
  });

  it('refuses attempts that are not whole numbers from 1', () => {
    expect(() => nextRetryAt(0, now)).toThrow(RangeError);
    expect(() => nextRetryAt(1.5, now)).toThrow(RangeError);
  });
});
