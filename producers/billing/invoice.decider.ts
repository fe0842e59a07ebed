/**
 * An invoice (`<ns>.evt.billing.invoice.<invoiceId>`), one per paid order or
 * renewal, its id derived from the order's: drafted with the order's lines
 * and the service period, finalized with the number its series gave it
 * (numbering.ts), then paid, or void when a renewal is never paid. It never
 * changes after finalization: a refund is a credit note on it.
 *
 *   draft ──finalize(number)──▶ finalized ──pay──▶ paid ──credit note…
 *                                   └──void──▶ void
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import type { InvoiceStatus } from './invoice-view.js';
import { pricedFields, pricedOf, type Priced } from './pricing.js';

export type InvoiceEventKey = 'billing.InvoiceDrafted' | 'billing.InvoiceFinalized' | 'billing.InvoicePaid' | 'billing.InvoiceVoided' | 'billing.CreditNoteIssued' | 'billing.InvoicePaymentFailed';

export interface DraftInvoice {
  invoiceId: string;
  orderId: string;
  userId: string;
  priced: Priced;
  periodStart: Date;
  periodEnd: Date;
  timeZone: string;
}

export interface DocumentNumber {
  series: string;
  sequence: number;
  number: string;
}

export interface InvoiceState {
  draft: DraftInvoice | null;
  status: InvoiceStatus;
  number: DocumentNumber | null;
  creditedMinor: bigint;
  creditNotes: readonly string[];
  failedAttempts: readonly number[];
  /** When the draft was made (its event's time): the year of the invoice's number series (numbering.ts). */
  draftedAt: Date | null;
}

export type InvoiceCommand =
  | { type: 'Draft'; invoice: DraftInvoice; at: Date }
  | { type: 'Finalize'; number: DocumentNumber; at: Date }
  | { type: 'MarkPaid'; provider: string; providerRef: string; at: Date }
  | { type: 'NotePaymentFailed'; attempt: number; reason: string; retryable: boolean; at: Date }
  | { type: 'Void'; reason: string; at: Date }
  | { type: 'IssueCreditNote'; creditNoteId: string; number: DocumentNumber; amountMinor: bigint; reason: string; at: Date };

type E = DomainEvent<InvoiceEventKey>;

export function invoiceIdOf(orderId: string): string {
  return `inv_${orderId.replace(/^ord_/, '')}`;
}

function decide(command: InvoiceCommand, state: InvoiceState): E[] {
  const { at } = command;
  if (command.type === 'Draft') {
    if (state.draft) return [];
    const { invoice } = command;
    const p = invoice.priced;
    return [
      {
        type: 'billing.InvoiceDrafted',
        data: {
          invoiceId: invoice.invoiceId,
          orderId: invoice.orderId,
          userId: invoice.userId,
          ...pricedFields(p),
          periodStart: invoice.periodStart,
          periodEnd: invoice.periodEnd,
          timeZone: invoice.timeZone,
          draftedAt: at,
        },
      },
    ];
  }
  const draft = state.draft;
  if (!draft) throw new DomainError('invoice_not_found', 'no such invoice');
  const { invoiceId, userId, orderId } = draft;
  switch (command.type) {
    case 'Finalize': {
      if (state.number) {
        if (state.number.number === command.number.number) return [];
        // Two numbers for one invoice would be a gap in one series: numbering.ts gives each document one number, ever.
        throw new Error(`invoice ${invoiceId} has number ${state.number.number}, not ${command.number.number}`);
      }
      const { series, sequence, number } = command.number;
      return [{ type: 'billing.InvoiceFinalized', data: { invoiceId, userId, orderId, series, sequence, number, totalMinor: draft.priced.totalMinor, currency: draft.priced.currency, finalizedAt: at } }];
    }
    case 'MarkPaid':
      if (state.status === 'paid') return [];
      if (state.status !== 'finalized') throw new DomainError('invoice_not_payable', `a ${state.status} invoice cannot be paid`);
      return [{ type: 'billing.InvoicePaid', data: { invoiceId, provider: command.provider, providerRef: command.providerRef, paidAt: at } }];
    case 'NotePaymentFailed':
      if (state.status !== 'finalized' || state.failedAttempts.includes(command.attempt)) return [];
      return [{ type: 'billing.InvoicePaymentFailed', data: { invoiceId, userId, orderId, number: state.number?.number ?? '', reason: command.reason, attempt: command.attempt, retryable: command.retryable, failedAt: at } }];
    case 'Void':
      if (state.status === 'void') return [];
      if (state.status !== 'finalized') throw new DomainError('invoice_not_voidable', `a ${state.status} invoice cannot be voided${state.status === 'paid' ? ': issue a credit note' : ''}`);
      return [{ type: 'billing.InvoiceVoided', data: { invoiceId, userId, reason: command.reason, voidedAt: at } }];
    case 'IssueCreditNote': {
      if (state.creditNotes.includes(command.creditNoteId)) return [];
      if (state.status !== 'paid') throw new DomainError('invoice_not_paid', 'only a paid invoice takes a credit note');
      const left = draft.priced.totalMinor - state.creditedMinor;
      if (command.amountMinor <= 0n || command.amountMinor > left) throw new DomainError('invalid_refund', `amountMinor: must be 1 to ${left} (what the invoice has left)`, { field: 'amountMinor' });
      const { series, sequence, number } = command.number;
      return [{ type: 'billing.CreditNoteIssued', data: { invoiceId, creditNoteId: command.creditNoteId, series, sequence, number, amountMinor: command.amountMinor, currency: draft.priced.currency, reason: command.reason, issuedAt: at } }];
    }
  }
}

function evolve(state: InvoiceState, event: E): InvoiceState {
  switch (event.type) {
    case 'billing.InvoiceDrafted': {
      const d = event.data;
      const priced = pricedOf(d);
      return { ...initialState, draft: { invoiceId: d.invoiceId, orderId: d.orderId, userId: d.userId, priced, periodStart: d.periodStart, periodEnd: d.periodEnd, timeZone: d.timeZone }, draftedAt: d.draftedAt };
    }
    case 'billing.InvoiceFinalized':
      return { ...state, status: 'finalized', number: { series: event.data.series, sequence: event.data.sequence, number: event.data.number } };
    case 'billing.InvoicePaid':
      return { ...state, status: 'paid' };
    case 'billing.InvoicePaymentFailed':
      return { ...state, failedAttempts: [...state.failedAttempts, event.data.attempt] };
    case 'billing.InvoiceVoided':
      return { ...state, status: 'void' };
    case 'billing.CreditNoteIssued':
      return { ...state, creditedMinor: state.creditedMinor + event.data.amountMinor, creditNotes: [...state.creditNotes, event.data.creditNoteId] };
  }
}

const initialState: InvoiceState = { draft: null, status: 'draft', number: null, creditedMinor: 0n, creditNotes: [], failedAttempts: [], draftedAt: null };

export const invoiceDecider: Decider<InvoiceState, InvoiceCommand, InvoiceEventKey> = { initialState, decide, evolve };
