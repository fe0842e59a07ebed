/** Billing's services on this process's connections: the payment providers configured here, and users' saved payment methods. */
import { ManualProvider, ProviderRegistry } from '../../producers/billing/providers/manual.js';
import { StripeProvider } from '../../producers/billing/providers/stripe.js';
import { PaymentMethods } from '../../producers/billing/payment-methods.js';
import type { CommandHandler } from '../../producers/event-store/command-handler.js';
import type { Runtime } from '../runtime.js';

/** `manual` always; `stripe` when RG_STRIPE_* configure it. */
export function openProviders(rt: Runtime): ProviderRegistry {
  const stripe = rt.config.stripe;
  return new ProviderRegistry([new ManualProvider(), ...(stripe ? [StripeProvider.fromConfig(stripe, rt.log)] : [])]);
}

export function openPaymentMethods(rt: Runtime, handler: CommandHandler, providers = openProviders(rt)): PaymentMethods {
  return PaymentMethods.open({ handler, db: rt.db, providers });
}
