/**
 * Money to Stripe's `amount` and back. Billing's minor unit is the ICU one
 * (money.ts: JPY 0 digits, EUR 2, KWD 3, ISK and HUF 0); Stripe's API has its
 * own table: a short list of zero-decimal currencies, five three-decimal ones
 * whose last digit must be 0, and two decimals for everything else — ISK and
 * HUF included, so 5 ISK is `500` there
 * (https://docs.stripe.com/currencies#special-cases). Converting by the two
 * tables keeps every amount exact; one that Stripe cannot take as it is
 * (a three-decimal amount not ending in 0) is refused, never rounded.
 */
import { DomainError } from '../../decider.js';
import { minorDigits, type Money } from '../money.js';

const ZERO_DECIMAL = new Set(['BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND', 'VUV', 'XAF', 'XOF', 'XPF']);
const THREE_DECIMAL = new Set(['BHD', 'JOD', 'KWD', 'OMR', 'TND']);

function stripeDigits(currency: string): number {
  return ZERO_DECIMAL.has(currency) ? 0 : THREE_DECIMAL.has(currency) ? 3 : 2;
}

/** Stripe's amount and lower-case currency for an amount of money. */
export function toStripeAmount(money: Money): { amount: number; currency: string } {
  const currency = money.currency.toUpperCase();
  const shift = stripeDigits(currency) - minorDigits(currency);
  const factor = 10n ** BigInt(Math.abs(shift));
  if (shift < 0 && money.amountMinor % factor !== 0n) {
    throw new DomainError('amount_not_chargeable', `${money.amountMinor} minor units of ${currency} are not a whole amount in Stripe's units`);
  }
  const amount = shift >= 0 ? money.amountMinor * factor : money.amountMinor / factor;
  if (THREE_DECIMAL.has(currency) && amount % 10n !== 0n) {
    throw new DomainError('amount_not_chargeable', `Stripe takes ${currency} amounts in multiples of 10 minor units only`);
  }
  if (amount <= 0n || amount > BigInt(Number.MAX_SAFE_INTEGER)) throw new DomainError('amount_not_chargeable', `${currency} amount ${money.amountMinor} is out of range for Stripe`);
  return { amount: Number(amount), currency: currency.toLowerCase() };
}

/** Billing's Money for an amount Stripe reports (a PaymentIntent's `amount_received`). */
export function fromStripeAmount(amount: number, stripeCurrency: string): Money {
  const currency = stripeCurrency.toUpperCase();
  const shift = stripeDigits(currency) - minorDigits(currency);
  const factor = 10n ** BigInt(Math.abs(shift));
  const value = BigInt(amount);
  if (shift > 0 && value % factor !== 0n) throw new RangeError(`Stripe amount ${amount} ${currency} has a fraction of the minor unit`);
  return { amountMinor: shift >= 0 ? value / factor : value * factor, currency };
}
