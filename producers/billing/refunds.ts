/**
 * Refunds: money back through the order's provider, recorded as a credit note
 * on its invoice (an invoice is never edited). The operator's idempotency key
 * names the refund: the credit note's id comes from it, the provider's refund
 * carries it, so a retry after a timeout or a crash refunds once.
 */
import { createHash } from 'node:crypto';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import type { BillingDeps } from './billing-deps.js';
import type { Invoicing } from './invoicing.js';
import { orderDecider, type OrderState } from './order.decider.js';
import type { ProviderRegistry } from './providers/manual.js';

/** What a refund's idempotency key may be (the CLI checks it before connecting). */
export const KEY = /^[\x21-\x7e]{1,255}$/;

export class Refunds {
  constructor(
    private readonly d: BillingDeps,
    private readonly providers: ProviderRegistry,
    private readonly invoicing: Invoicing,
  ) {}

  async refund(orderId: string, idempotencyKey: unknown, input: { amountMinor?: unknown; reason?: unknown }, actor: Actor, now = new Date()): Promise<OrderState & { creditNoteId: string }> {
    if (typeof idempotencyKey !== 'string' || !KEY.test(idempotencyKey)) throw new DomainError('idempotency_key_required', 'send an Idempotency-Key header: a retried refund with it refunds once', { field: 'Idempotency-Key' });
    const reason = input.reason ?? 'refund';
    if (typeof reason !== 'string' || reason.length < 1 || reason.length > 200) throw new DomainError('invalid_refund', 'reason: 1-200 characters', { field: 'reason' });
    const creditNoteId = `cn_${createHash('sha256').update(`${orderId}\n${idempotencyKey}`).digest('hex').slice(0, 32)}`;
    const { state } = await this.d.load(orderDecider, 'order', orderId);
    const order = state.order;
    if (!order) throw new DomainError('order_not_found', 'no such order');
    const done = state.creditNotes.includes(creditNoteId);
    if (!done) {
      const left = order.priced.totalMinor - state.refundedMinor;
      const amount = input.amountMinor ?? Number(left);
      if (typeof amount !== 'number' || !Number.isSafeInteger(amount)) throw new DomainError('invalid_refund', 'amountMinor: a whole number of minor units', { field: 'amountMinor' });
      // The decider's rules first, so a refund it would refuse never reaches the provider.
      orderDecider.decide({ type: 'Refund', creditNoteId, amountMinor: BigInt(amount), providerRef: '-', reason, by: actor.actor, at: now }, state);
      const provider = this.providers.get(order.provider);
      const money = { amountMinor: BigInt(amount), currency: order.priced.currency };
      const { providerRef } = await provider.refund({ orderId, providerRef: state.providerRef ?? orderId, amount: money, idempotencyKey: creditNoteId });
      await this.d.decide(orderDecider, 'order', orderId, { type: 'Refund', creditNoteId, amountMinor: money.amountMinor, providerRef, reason, by: actor.actor, at: now }, actor);
    }
    const after = (await this.d.load(orderDecider, 'order', orderId)).state;
    const refunded = (await this.d.handler.store.read(this.d.subject('order', orderId), 0)).events.find((e) => e.type === 'billing.OrderRefunded' && e.data.creditNoteId === creditNoteId);
    if (refunded?.type === 'billing.OrderRefunded' && after.fulfilled) {
      await this.invoicing.creditNote(after.fulfilled.invoiceId, creditNoteId, refunded.data.amountMinor, refunded.data.reason, actor, refunded.data.refundedAt);
    }
    return { ...after, creditNoteId };
  }
}
