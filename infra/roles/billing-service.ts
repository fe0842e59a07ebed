/** Billing on this process's connections (docs/billing.md): the providers configured here and the context's services. */
import { Billing, NO_PAYMENT_METHODS } from '../../producers/billing/billing.js';
import type { CouponBook } from '../../producers/billing/checkout.js';
import type { PaymentMethodResolver } from '../../producers/billing/payments.js';
import { ManualProvider, ProviderRegistry } from '../../producers/billing/providers/manual.js';
import { StripeProvider } from '../../producers/billing/providers/stripe.js';
import type { CommandHandler } from '../../producers/event-store/command-handler.js';
import type { Plans } from '../../producers/plans/plans.js';
import type { Runtime } from '../runtime.js';

/** `manual` always; `stripe` when RG_STRIPE_SECRET_KEY is set. */
export function openProviders(rt: Runtime): ProviderRegistry {
  const stripe = rt.config.stripe;
  return new ProviderRegistry([new ManualProvider(), ...(stripe ? [StripeProvider.fromConfig(stripe, rt.log)] : [])]);
}

export function openBilling(rt: Runtime, handler: CommandHandler, plans: Plans, opts: { coupons?: CouponBook | null; methods?: PaymentMethodResolver; providers?: ProviderRegistry } = {}): Billing {
  return new Billing({
    handler,
    db: rt.db,
    plans,
    providers: opts.providers ?? openProviders(rt),
    methods: opts.methods ?? NO_PAYMENT_METHODS,
    coupons: opts.coupons ?? null,
    taxRates: rt.config.billing.taxRates,
    timeZone: rt.config.billing.timeZone,
  });
}
