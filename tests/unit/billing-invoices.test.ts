/** Given/when/then for invoices (draft → finalized → paid / void, credit notes) and the numbering series they take their numbers from. */
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { numberOf, seriesDecider, type SeriesCommand, type SeriesEventKey } from '../../producers/billing/document-series.decider.js';
import { invoiceDecider, invoiceIdOf, type DocumentNumber, type DraftInvoice, type InvoiceCommand, type InvoiceEventKey } from '../../producers/billing/invoice.decider.js';
import { price } from '../../producers/billing/pricing.js';
import { fold } from '../../producers/decider.js';
import { given } from '../support/decider-spec.js';

type E = DomainEvent<InvoiceEventKey>;

const at = new Date('2026-12-07T10:00:00Z');
const periodStart = at;
const periodEnd = new Date('2027-01-07T10:00:00Z');
// 1 × 11.99 EUR, 19%: 11.99 + 2.28 (227.81) = 14.27.
const priced = price({ plan: { planId: 'pro', name: 'Pro', price: { amountMinor: 1199n, currency: 'EUR' } }, months: 1, tax: { country: 'DE', rateBasisPoints: 1900 } });
const draft: DraftInvoice = { invoiceId: 'inv_1', orderId: 'ord_1', userId: 'u1', priced, periodStart, periodEnd, timeZone: 'Europe/Berlin' };
const number: DocumentNumber = { series: 'invoice-2026-EUR', sequence: 7, number: '2026-EUR-000007' };
const creditNumber = (sequence: number): DocumentNumber => ({ series: 'credit-2026-EUR', sequence, number: `CN-2026-EUR-${sequence}` });

const drafted: E = {
  type: 'billing.InvoiceDrafted',
  data: {
    invoiceId: 'inv_1', orderId: 'ord_1', userId: 'u1', currency: 'EUR',
    lines: [{ kind: 'plan', description: 'Pro, 1 month', quantity: 1, unitAmountMinor: 1199n, amountMinor: 1199n }],
    subtotalMinor: 1199n, taxRateBasisPoints: 1900, taxCountry: 'DE', taxMinor: 228n, totalMinor: 1427n,
    periodStart, periodEnd, timeZone: 'Europe/Berlin', draftedAt: at,
  },
};
const finalized: E = { type: 'billing.InvoiceFinalized', data: { invoiceId: 'inv_1', userId: 'u1', orderId: 'ord_1', series: 'invoice-2026-EUR', sequence: 7, number: '2026-EUR-000007', totalMinor: 1427n, currency: 'EUR', finalizedAt: at } };
const invoicePaid: E = { type: 'billing.InvoicePaid', data: { invoiceId: 'inv_1', provider: 'manual', providerRef: 'bank-77', paidAt: at } };
const voided: E = { type: 'billing.InvoiceVoided', data: { invoiceId: 'inv_1', userId: 'u1', reason: 'renewal_unpaid', voidedAt: at } };
const paymentFailed = (attempt: number): E => ({ type: 'billing.InvoicePaymentFailed', data: { invoiceId: 'inv_1', userId: 'u1', orderId: 'ord_1', number: '2026-EUR-000007', reason: 'card_declined', attempt, retryable: true, failedAt: at } });
const credited = (creditNoteId: string, sequence: number, amountMinor: bigint): E => ({
  type: 'billing.CreditNoteIssued',
  data: { invoiceId: 'inv_1', creditNoteId, series: 'credit-2026-EUR', sequence, number: `CN-2026-EUR-${sequence}`, amountMinor, currency: 'EUR', reason: 'goodwill', issuedAt: at },
});

const finalize = (n: DocumentNumber = number): InvoiceCommand => ({ type: 'Finalize', number: n, at });
const markPaid: InvoiceCommand = { type: 'MarkPaid', provider: 'manual', providerRef: 'bank-77', at };
const noteFailed = (attempt: number): InvoiceCommand => ({ type: 'NotePaymentFailed', attempt, reason: 'card_declined', retryable: true, at });
const voidIt: InvoiceCommand = { type: 'Void', reason: 'renewal_unpaid', at };
const creditNote = (creditNoteId: string, sequence: number, amountMinor: bigint): InvoiceCommand => ({ type: 'IssueCreditNote', creditNoteId, number: creditNumber(sequence), amountMinor, reason: 'goodwill', at });
const stateOf = (history: E[]) => fold(invoiceDecider, invoiceDecider.initialState, history);

describe('invoice', () => {
  it('drafts once, with the order lines and the service period', () => {
    given(invoiceDecider).when({ type: 'Draft', invoice: draft, at }).then([drafted]);
    given(invoiceDecider, [drafted]).when({ type: 'Draft', invoice: { ...draft, periodEnd: new Date('2027-02-07T10:00:00Z') }, at }).then([]);
    expect(stateOf([drafted])).toMatchObject({ draft, status: 'draft', number: null });
  });

  it('refuses every other command on an invoice never drafted', () => {
    for (const command of [finalize(), markPaid, noteFailed(1), voidIt, creditNote('cn_1', 1, 1n)]) given(invoiceDecider).when(command).thenError('invoice_not_found');
  });

  it('finalizes with its number once; the same number again decides nothing', () => {
    given(invoiceDecider, [drafted]).when(finalize()).then([finalized]);
    given(invoiceDecider, [drafted, finalized]).when(finalize()).then([]);
    expect(stateOf([drafted, finalized])).toMatchObject({ status: 'finalized', number });
  });

  it('throws on a second, different number: that would be a gap in the series', () => {
    const state = stateOf([drafted, finalized]);
    expect(() => invoiceDecider.decide(finalize({ ...number, sequence: 8, number: '2026-EUR-000008' }), state)).toThrow(/2026-EUR-000007/);
  });

  it('is paid once, when finalized', () => {
    given(invoiceDecider, [drafted, finalized]).when(markPaid).then([invoicePaid]);
    given(invoiceDecider, [drafted, finalized, invoicePaid]).when(markPaid).then([]);
    given(invoiceDecider, [drafted]).when(markPaid).thenError('invoice_not_payable');
    given(invoiceDecider, [drafted, finalized, voided]).when(markPaid).thenError('invoice_not_payable');
  });

  it('notes a failed payment once per attempt, while the invoice is open', () => {
    given(invoiceDecider, [drafted, finalized]).when(noteFailed(1)).then([paymentFailed(1)]);
    given(invoiceDecider, [drafted, finalized, paymentFailed(1)]).when(noteFailed(1)).then([]);
    given(invoiceDecider, [drafted, finalized, paymentFailed(1)]).when(noteFailed(2)).then([paymentFailed(2)]);
    given(invoiceDecider, [drafted]).when(noteFailed(1)).then([]);
    given(invoiceDecider, [drafted, finalized, invoicePaid]).when(noteFailed(1)).then([]);
  });

  it('voids a finalized invoice once; a paid one is credited instead', () => {
    given(invoiceDecider, [drafted, finalized]).when(voidIt).then([voided]);
    given(invoiceDecider, [drafted, finalized, voided]).when(voidIt).then([]);
    given(invoiceDecider, [drafted, finalized, invoicePaid]).when(voidIt).thenError('invoice_not_voidable');
    given(invoiceDecider, [drafted]).when(voidIt).thenError('invoice_not_voidable');
  });

  it('issues credit notes on a paid invoice only, up to what is not credited yet', () => {
    const paidInvoice = [drafted, finalized, invoicePaid];
    given(invoiceDecider, [drafted, finalized]).when(creditNote('cn_1', 1, 100n)).thenError('invoice_not_paid');
    given(invoiceDecider, [drafted, finalized, voided]).when(creditNote('cn_1', 1, 100n)).thenError('invoice_not_paid');
    given(invoiceDecider, paidInvoice).when(creditNote('cn_1', 1, 1000n)).then([credited('cn_1', 1, 1000n)]);
    given(invoiceDecider, [...paidInvoice, credited('cn_1', 1, 1000n)]).when(creditNote('cn_2', 2, 428n)).thenError('invalid_refund');
    given(invoiceDecider, [...paidInvoice, credited('cn_1', 1, 1000n)]).when(creditNote('cn_2', 2, 427n)).then([credited('cn_2', 2, 427n)]);
    given(invoiceDecider, paidInvoice).when(creditNote('cn_1', 1, 0n)).thenError('invalid_refund');
    expect(stateOf([...paidInvoice, credited('cn_1', 1, 1000n), credited('cn_2', 2, 427n)])).toMatchObject({ status: 'paid', creditedMinor: 1427n, creditNotes: ['cn_1', 'cn_2'] });
    given(invoiceDecider, [...paidInvoice, credited('cn_1', 1, 1000n), credited('cn_2', 2, 427n)]).when(creditNote('cn_3', 3, 1n)).thenError('invalid_refund');
  });

  it('a credit note asked again by its id decides nothing', () => {
    given(invoiceDecider, [drafted, finalized, invoicePaid, credited('cn_1', 1, 1427n)]).when(creditNote('cn_1', 1, 1427n)).then([]);
  });

  it('derives the invoice id from the order id', () => {
    expect(invoiceIdOf('ord_7f3a')).toBe('inv_7f3a');
    expect(invoiceIdOf('ord_ord_1')).toBe('inv_ord_1');
    expect(invoiceIdOf('renewal-1')).toBe('inv_renewal-1');
  });
});

describe('document series', () => {
  type S = DomainEvent<SeriesEventKey>;
  const series = 'invoice-2026-EUR';
  const assign = (...documentIds: string[]): SeriesCommand => ({ type: 'Assign', series, documentIds, at });
  const assigned = (first: number, ...documentIds: string[]): S => ({ type: 'billing.DocumentNumbersAssigned', data: { series, first, documentIds, assignedAt: at } });

  it('numbers from 1, consecutively across commands', () => {
    given(seriesDecider).when(assign('inv_a', 'inv_b')).then([assigned(1, 'inv_a', 'inv_b')]);
    given(seriesDecider, [assigned(1, 'inv_a', 'inv_b')]).when(assign('inv_c')).then([assigned(3, 'inv_c')]);
  });

  it('an id asked again keeps its number and decides nothing; only the new ids of a batch are numbered', () => {
    given(seriesDecider, [assigned(1, 'inv_a', 'inv_b')]).when(assign('inv_b')).then([]);
    given(seriesDecider, [assigned(1, 'inv_a', 'inv_b')]).when(assign('inv_b', 'inv_c', 'inv_a')).then([assigned(3, 'inv_c')]);
    given(seriesDecider).when(assign()).then([]);
  });

  it('a duplicate inside one command gets one number', () => {
    given(seriesDecider).when(assign('inv_a', 'inv_b', 'inv_a', 'inv_b')).then([assigned(1, 'inv_a', 'inv_b')]);
  });

  it('folds to the number of every id and the next free one', () => {
    const history = [assigned(1, 'inv_a', 'inv_b'), assigned(3, 'inv_c'), assigned(4, 'inv_d', 'inv_e', 'inv_f')];
    const state = fold(seriesDecider, seriesDecider.initialState, history);
    expect(state.next).toBe(7);
    expect([...state.numbers]).toEqual([['inv_a', 1], ['inv_b', 2], ['inv_c', 3], ['inv_d', 4], ['inv_e', 5], ['inv_f', 6]]);
    // An older state says what it said: folding on from it adds numbers it does not see (numberOf), and the initial state stays empty.
    const first = fold(seriesDecider, seriesDecider.initialState, history.slice(0, 1));
    const later = fold(seriesDecider, first, history.slice(1));
    expect([numberOf(first, 'inv_b'), numberOf(first, 'inv_c'), numberOf(later, 'inv_c')]).toEqual([2, undefined, 3]);
    given(seriesDecider, history.slice(0, 1)).when(assign('inv_c')).then([assigned(3, 'inv_c')]);
    expect(seriesDecider.initialState.numbers.size).toBe(0);
  });
});
