/**
 * A coupon as an admin sends it (the API's body), checked: each refusal a
 * DomainError `invalid_coupon` naming the field. Codes are what customers
 * type, so they are compared upper-case: `spring-25` is `SPRING-25`.
 */
import { DomainError } from '../decider.js';
import type { CouponDefinition } from './coupon.decider.js';

const CODE = /^[A-Z0-9-]{3,32}$/;
const MAX_USES = 1_000_000;

function invalid(field: string, why: string): never {
  throw new DomainError('invalid_coupon', `${field}: ${why}`, { field });
}

/** The stored form of a code customers typed, or null when no coupon can have it. */
export function normalizeCode(raw: unknown): string | null {
  if (typeof raw !== 'string') return null;
  const code = raw.trim().toUpperCase();
  return CODE.test(code) ? code : null;
}

function optional<T>(raw: unknown, check: (value: unknown) => T): T | null {
  return raw === undefined || raw === null ? null : check(raw);
}

function wholeNumber(field: string, min: number, max: number) {
  return (value: unknown): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) invalid(field, `must be a whole number, ${min} to ${max}`);
    return value;
  };
}

function currency(value: unknown): string {
  if (typeof value !== 'string' || !Intl.supportedValuesOf('currency').includes(value)) invalid('currency', 'must be an ISO 4217 currency code such as EUR or USD');
  return value;
}

function expiry(now: Date) {
  return (value: unknown): Date => {
    const at = typeof value === 'string' ? new Date(value) : new Date(NaN);
    if (Number.isNaN(at.getTime())) invalid('expiresAt', 'must be an ISO 8601 date-time, or null for never');
    if (at.getTime() <= now.getTime()) invalid('expiresAt', 'must be in the future');
    return at;
  };
}

/** The kind's own fields, and none of the other kind's. */
function discount(input: Record<string, unknown>): Pick<CouponDefinition, 'kind' | 'percentOff' | 'amountOffMinor' | 'currency'> {
  const present = (field: string) => input[field] !== undefined && input[field] !== null;
  if (input['kind'] === 'percent') {
    for (const field of ['amountOffMinor', 'currency']) if (present(field)) invalid(field, 'only for kind fixed');
    return { kind: 'percent', percentOff: wholeNumber('percentOff', 1, 100)(input['percentOff']), amountOffMinor: null, currency: null };
  }
  if (input['kind'] === 'fixed') {
    if (present('percentOff')) invalid('percentOff', 'only for kind percent');
    const amount = wholeNumber('amountOffMinor', 1, Number.MAX_SAFE_INTEGER)(input['amountOffMinor']);
    return { kind: 'fixed', percentOff: null, amountOffMinor: BigInt(amount), currency: currency(input['currency']) };
  }
  return invalid('kind', 'must be percent or fixed');
}

export function validateCouponInput(input: Record<string, unknown>, now: Date): { code: string } & CouponDefinition {
  const code = normalizeCode(input['code']) ?? invalid('code', "must be 3-32 of A-Z, 0-9 or '-' (case does not matter)");
  return {
    code,
    ...discount(input),
    expiresAt: optional(input['expiresAt'], expiry(now)),
    maxUses: optional(input['maxUses'], wholeNumber('maxUses', 1, MAX_USES)),
  };
}
