/**
 * The `manual` provider: bank transfer, crypto, cash — anything an operator
 * sees arrive and confirms (API, CLI, the NATS ops service) with the
 * payment's reference. A charge never takes money by itself: the order waits,
 * its id is the reference the customer quotes with the payment.
 */
import { DomainError } from '../../decider.js';
import type { ChargeRequest, ChargeResult, PaymentProvider, RefundRequest } from './provider.js';

export const MANUAL_PROVIDER = 'manual';

export class ManualProvider implements PaymentProvider {
  readonly name = MANUAL_PROVIDER;

  constructor(private readonly instructions = 'Pay by bank transfer quoting the order id as the reference; an operator confirms the payment.') {}

  charge(request: ChargeRequest): Promise<ChargeResult> {
    return Promise.resolve({ status: 'pending', providerRef: request.orderId, instructions: this.instructions });
  }

  /** The money goes back the way it came, by hand: the credit note records it, the operator pays it out. */
  refund(request: RefundRequest): Promise<{ providerRef: string }> {
    return Promise.resolve({ providerRef: `manual-refund-${request.idempotencyKey}` });
  }
}

/** The providers this installation can use, by name: `manual` always, `stripe` when configured. */
export class ProviderRegistry {
  private readonly byName = new Map<string, PaymentProvider>();

  constructor(providers: PaymentProvider[]) {
    for (const p of providers) this.byName.set(p.name, p);
  }

  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  get(name: string): PaymentProvider {
    const provider = this.byName.get(name);
    if (!provider) throw new DomainError('payment_provider_not_configured', `the ${name} payment provider is not configured here (have: ${this.names().join(', ')})`, { field: 'provider' });
    return provider;
  }
}
