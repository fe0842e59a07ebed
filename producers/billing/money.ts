/**
 * Money is an integer amount of minor units (cents for EUR, yen for JPY) with
 * its ISO 4217 currency, everywhere: in events (`long` + `string`), read
 * models (`bigint` + `text`), the API (a JSON integer: safe up to 2^53, far
 * beyond any price) and PDFs. Never a float.
 */
import { DomainError } from '../decider.js';

export interface Money {
  amountMinor: bigint;
  currency: string;
}

/** Minor-unit digits of a currency as the ICU data has them (EUR 2, JPY 0, KWD 3). */
export function minorDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

export function money(amountMinor: bigint, currency: string): Money {
  return { amountMinor, currency };
}

export function sameCurrency(a: Money, b: Money): void {
  if (a.currency !== b.currency) throw new DomainError('currency_mismatch', `cannot combine ${a.currency} with ${b.currency}`);
}

export function add(a: Money, b: Money): Money {
  sameCurrency(a, b);
  return { amountMinor: a.amountMinor + b.amountMinor, currency: a.currency };
}

/** `amount × numerator / denominator`, rounded half away from zero to the minor unit: the one rounding rule billing uses. */
export function mulDiv(amountMinor: bigint, numerator: bigint, denominator: bigint): bigint {
  if (denominator <= 0n) throw new RangeError('denominator must be positive');
  const product = amountMinor * numerator;
  const sign = product < 0n ? -1n : 1n;
  const abs = product * sign;
  return sign * ((abs * 2n + denominator) / (denominator * 2n));
}

/** `12.34 EUR` for humans (PDFs, mails): the decimal point placed by the currency's digits, no float involved. */
export function formatMoney(m: Money): string {
  const digits = minorDigits(m.currency);
  const negative = m.amountMinor < 0n;
  const abs = (negative ? -m.amountMinor : m.amountMinor).toString().padStart(digits + 1, '0');
  const whole = digits === 0 ? abs : abs.slice(0, -digits);
  const fraction = digits === 0 ? '' : `.${abs.slice(-digits)}`;
  return `${negative ? '-' : ''}${whole}${fraction} ${m.currency}`;
}
