/** Billing on this process's connections (docs/billing.md): the payment providers configured here, users' saved payment methods, and the context's services. */
import { Billing } from '../../producers/billing/billing.js';
import type { CouponBook } from '../../producers/billing/checkout.js';
import { Coupons } from '../../producers/billing/coupons.js';
import { ContextDeps } from '../../producers/context-deps.js';
import { PaymentMethods } from '../../producers/billing/payment-methods.js';
import { PersonKeys } from '../../producers/identity/crypto/person-keys.js';
import { ManualProvider, ProviderRegistry } from '../../producers/billing/providers/manual.js';
import { StripeProvider } from '../../producers/billing/providers/stripe.js';
import type { CommandHandler } from '../../producers/event-store/command-handler.js';
import type { Plans } from '../../producers/plans/plans.js';
import { requireMasterKey } from '../config.js';
import type { Runtime } from '../runtime.js';

/** `manual` always; `stripe` when RG_STRIPE_* configure it. */
export function openProviders(rt: Runtime): ProviderRegistry {
  const stripe = rt.config.stripe;
  return new ProviderRegistry([new ManualProvider(), ...(stripe ? [StripeProvider.fromConfig(stripe, rt.log)] : [])]);
}

/**
 * Saved cards are sealed under each person's key: the keyring is opened on
 * first use, so a CLI that never touches a card runs without RG_MASTER_KEY.
 * Its own keyring, not identity's: it never creates keys, so it caches none
 * and sees a forget in any process at once.
 */
export function openPaymentMethods(rt: Runtime, handler: CommandHandler, providers = openProviders(rt)): PaymentMethods {
  let keys: PersonKeys | undefined;
  return PaymentMethods.open({ handler, db: rt.db, providers, keys: () => (keys ??= new PersonKeys(rt.db, requireMasterKey(rt.config))) });
}

/** Checkout, payments, invoices and refunds; `coupons` null: every coupon is unknown. */
export function openBilling(rt: Runtime, handler: CommandHandler, plans: Plans, opts: { coupons: CouponBook | null; methods: PaymentMethods; providers: ProviderRegistry }): Billing {
  return new Billing({ handler, db: rt.db, plans, ...opts, taxRates: rt.config.billing.taxRates, timeZone: rt.config.billing.timeZone });
}

/** Billing with its coupons, providers and payment methods, for the operators' CLI and ops service (the API keeps the parts it also serves). */
export function openOperatorBilling(rt: Runtime, handler: CommandHandler, plans: Plans): Billing {
  const providers = openProviders(rt);
  const coupons = new Coupons(new ContextDeps<'coupon'>('billing', handler, rt.db));
  return openBilling(rt, handler, plans, { coupons, providers, methods: openPaymentMethods(rt, handler, providers) });
}
