/** Billing on this process's connections (docs/billing.md): the payment providers configured here, users' saved payment methods, and the context's services. */
import { Billing } from '../../producers/billing/billing.js';
import type { CouponBook } from '../../producers/billing/checkout.js';
import { Coupons } from '../../producers/billing/coupons.js';
import { ContextDeps } from '../../producers/context-deps.js';
import { PaymentMethods } from '../../producers/billing/payment-methods.js';
import { ManualProvider, ProviderRegistry } from '../../producers/billing/providers/manual.js';
import { StripeProvider } from '../../producers/billing/providers/stripe.js';
import type { CommandHandler } from '../../producers/event-store/command-handler.js';
import type { Plans } from '../../producers/plans/plans.js';
import type { Runtime } from '../runtime.js';

/** `manual` always; `stripe` when RG_STRIPE_* configure it. */
export function openProviders(rt: Runtime): ProviderRegistry {
  const stripe = rt.config.stripe;
  return new ProviderRegistry([new ManualProvider(), ...(stripe ? [StripeProvider.fromConfig(stripe, rt.log)] : [])]);
}

export function openPaymentMethods(rt: Runtime, handler: CommandHandler, providers = openProviders(rt)): PaymentMethods {
  return PaymentMethods.open({ handler, db: rt.db, providers });
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
