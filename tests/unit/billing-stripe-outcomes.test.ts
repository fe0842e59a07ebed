import { describe, expect, it } from 'vitest';
import { DomainError } from '../../producers/decider.js';
import { money } from '../../producers/billing/money.js';
import { fromStripeAmount, toStripeAmount } from '../../producers/billing/providers/stripe-amount.js';
import { chargeResultOf, classifyDecline } from '../../producers/billing/providers/stripe-outcomes.js';

describe("Stripe's declines", () => {
  it.each([
    [{ code: 'card_declined', decline_code: 'insufficient_funds' }, 'insufficient_funds', true],
    [{ code: 'card_declined', decline_code: 'try_again_later' }, 'try_again_later', true],
    [{ code: 'card_declined', decline_code: 'generic_decline' }, 'generic_decline', true],
    [{ code: 'expired_card', decline_code: 'expired_card' }, 'expired_card', false],
    [{ code: 'expired_card' }, 'expired_card', false],
    [{ code: 'card_declined', decline_code: 'lost_card' }, 'lost_card', false],
    [{ code: 'card_declined', decline_code: 'stolen_card' }, 'stolen_card', false],
    [{ code: 'card_declined', decline_code: 'fraudulent' }, 'fraudulent', false],
    [{ code: 'authentication_required', decline_code: 'authentication_required' }, 'authentication_required', false],
    [{ code: 'card_declined' }, 'card_declined', false],
    [{}, 'card_declined', false],
    // The network's advice outranks the decline code.
    [{ code: 'card_declined', decline_code: 'insufficient_funds', advice_code: 'do_not_try_again' }, 'insufficient_funds', false],
    [{ code: 'card_declined', decline_code: 'card_not_supported', advice_code: 'try_again_later' }, 'card_not_supported', true],
  ])('%j is %s, retryable %s', (error, reason, retryable) => {
    expect(classifyDecline(error)).toEqual({ reason, retryable });
  });
});

describe('a PaymentIntent as a charge result', () => {
  it.each([
    ['succeeded', { status: 'succeeded', providerRef: 'pi_1' }],
    ['processing', { status: 'pending', providerRef: 'pi_1' }],
    ['requires_action', { status: 'pending', providerRef: 'pi_1' }],
    ['requires_capture', { status: 'pending', providerRef: 'pi_1' }],
    ['canceled', { status: 'failed', providerRef: 'pi_1', reason: 'canceled', retryable: false }],
    ['requires_confirmation', { status: 'failed', providerRef: 'pi_1', reason: 'requires_confirmation', retryable: false }],
  ])('%s', (status, expected) => {
    expect(chargeResultOf({ id: 'pi_1', status })).toMatchObject(expected);
  });

  it('a declined one carries the reason of its last payment error', () => {
    expect(chargeResultOf({ id: 'pi_1', status: 'requires_payment_method', last_payment_error: { code: 'card_declined', decline_code: 'insufficient_funds' } })).toEqual({
      status: 'failed',
      providerRef: 'pi_1',
      reason: 'insufficient_funds',
      retryable: true,
    });
  });
});

describe("Stripe's amounts", () => {
  it.each([
    [1299n, 'EUR', 1299, 'eur'],
    [500n, 'JPY', 500, 'jpy'],
    [5n, 'ISK', 500, 'isk'],
    [1000n, 'HUF', 100000, 'huf'],
    [5120n, 'KWD', 5120, 'kwd'],
    [7000n, 'UGX', 7000, 'ugx'],
  ])('%s minor units of %s are %s %s, and back', (amountMinor, currency, amount, stripeCurrency) => {
    expect(toStripeAmount(money(amountMinor, currency))).toEqual({ amount, currency: stripeCurrency });
    expect(fromStripeAmount(amount, stripeCurrency)).toEqual(money(amountMinor, currency));
  });

  it.each([
    [5125n, 'KWD'],
    [0n, 'EUR'],
    [-100n, 'EUR'],
    [2n ** 60n, 'EUR'],
  ])('refuses %s %s rather than round it', (amountMinor, currency) => {
    expect(() => toStripeAmount(money(amountMinor, currency))).toThrow(DomainError);
  });

  it('an amount with a fraction of the minor unit (a fractional ISK of old) is an error, not a rounding', () => {
    expect(() => fromStripeAmount(4010, 'isk')).toThrow(RangeError);
  });
});
