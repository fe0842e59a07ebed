/**
 * Issuing invoices and credit notes: draft from the order, number from the
 * series, finalize; each step idempotent, so a crash anywhere is finished by
 * running the same call again (the fulfilment sweep does). The series year is
 * the draft's, not the retry's: a draft of 31 December finished on 1 January
 * still takes its number in the old year's series, which it may already hold.
 */
import type { Actor } from '../identity/identity-deps.js';
import type { BillingDeps } from './billing-deps.js';
import { invoiceDecider, invoiceIdOf, type DraftInvoice, type InvoiceState } from './invoice.decider.js';
import type { DocumentNumbers } from './numbering.js';
import type { PlacedOrder } from './order.decider.js';

const SYSTEM: Actor = { actor: 'system:billing' };

export class Invoicing {
  constructor(
    private readonly d: BillingDeps,
    private readonly numbers: DocumentNumbers,
  ) {}

  async load(invoiceId: string): Promise<InvoiceState> {
    return (await this.d.load(invoiceDecider, 'invoice', invoiceId)).state;
  }

  /** The order's invoice, finalized: drafted for `period` unless a draft exists (then its period stands). */
  async issue(order: PlacedOrder, period: { start: Date; end: Date }, timeZone: string, now = new Date()): Promise<InvoiceState & { draft: DraftInvoice }> {
    const invoiceId = invoiceIdOf(order.orderId);
    const invoice: DraftInvoice = { invoiceId, orderId: order.orderId, userId: order.userId, priced: order.priced, periodStart: period.start, periodEnd: period.end, timeZone };
    let { state } = await this.d.decide(invoiceDecider, 'invoice', invoiceId, { type: 'Draft', invoice, at: now }, SYSTEM);
    if (!state.number) {
      // The state holds the draft's time: no read of the aggregate (an ordered consumer per invoice) for it.
      const number = await this.numbers.number('invoice', invoiceId, order.priced.currency, state.draftedAt ?? now);
      ({ state } = await this.d.decide(invoiceDecider, 'invoice', invoiceId, { type: 'Finalize', number, at: now }, SYSTEM));
    }
    if (!state.draft) throw new Error(`invoice ${invoiceId} has no draft after drafting`);
    return { ...state, draft: state.draft };
  }

  async markPaid(invoiceId: string, provider: string, providerRef: string, now = new Date()): Promise<void> {
    await this.d.decide(invoiceDecider, 'invoice', invoiceId, { type: 'MarkPaid', provider, providerRef, at: now }, SYSTEM);
  }

  async notePaymentFailed(invoiceId: string, attempt: number, reason: string, retryable: boolean, now = new Date()): Promise<void> {
    await this.d.decide(invoiceDecider, 'invoice', invoiceId, { type: 'NotePaymentFailed', attempt, reason, retryable, at: now }, SYSTEM);
  }

  async void(invoiceId: string, reason: string, now = new Date()): Promise<void> {
    await this.d.decide(invoiceDecider, 'invoice', invoiceId, { type: 'Void', reason, at: now }, SYSTEM);
  }

  /** A credit note of `amountMinor` on a paid invoice, numbered in the credit-note series (idempotent by its id). */
  async creditNote(invoiceId: string, creditNoteId: string, amountMinor: bigint, reason: string, actor: Actor, now = new Date()): Promise<void> {
    const state = await this.load(invoiceId);
    if (state.creditNotes.includes(creditNoteId) || !state.draft) return;
    const number = await this.numbers.number('credit-note', creditNoteId, state.draft.priced.currency, now);
    await this.d.decide(invoiceDecider, 'invoice', invoiceId, { type: 'IssueCreditNote', creditNoteId, number, amountMinor, reason, at: now }, actor);
  }
}
