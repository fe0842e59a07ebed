import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { fold } from '../../producers/decider.js';
import { invoiceDecider, type InvoiceEventKey } from '../../producers/billing/invoice.decider.js';
import { price } from '../../producers/billing/pricing.js';
import { given } from '../support/decider-spec.js';

const draftedAt = new Date('2026-12-31T23:30:00Z');
const finalizedAt = new Date('2027-01-01T00:10:00Z');
const priced = price({ plan: { planId: 'p', name: 'P', price: { amountMinor: 999n, currency: 'EUR' } }, months: 1, tax: { country: null, rateBasisPoints: 0 } });
const invoice = { invoiceId: 'inv_1', orderId: 'ord_1', userId: 'u1', priced, periodStart: new Date('2027-01-01T00:00:00Z'), periodEnd: new Date('2027-02-01T00:00:00Z'), timeZone: 'UTC' };
const number = { series: 'invoice-2026-EUR', sequence: 7, number: '2026-EUR-000007' };
const p = priced;
const drafted: DomainEvent<InvoiceEventKey> = {
  type: 'billing.InvoiceDrafted',
  data: { invoiceId: 'inv_1', orderId: 'ord_1', userId: 'u1', currency: 'EUR', lines: p.lines, subtotalMinor: p.subtotalMinor, taxRateBasisPoints: 0, taxCountry: null, taxMinor: 0n, totalMinor: p.totalMinor, periodStart: invoice.periodStart, periodEnd: invoice.periodEnd, timeZone: 'UTC', draftedAt },
};

describe('invoice decider', () => {
  it('drafts once; a second draft decides nothing', () => {
    given(invoiceDecider).when({ type: 'Draft', invoice, at: draftedAt }).then([drafted]);
    given(invoiceDecider, [drafted]).when({ type: 'Draft', invoice, at: finalizedAt }).then([]);
  });

  it('keeps the draft’s time, so a finalization retried in the next year still numbers in the draft’s year without reading the log', () => {
    expect(fold(invoiceDecider, invoiceDecider.initialState, [drafted]).draftedAt).toEqual(draftedAt);
    expect(invoiceDecider.initialState.draftedAt).toBeNull();
  });

  it('finalizes with its number once; the same number again decides nothing', () => {
    const finalized: DomainEvent<InvoiceEventKey> = {
      type: 'billing.InvoiceFinalized',
      data: { invoiceId: 'inv_1', userId: 'u1', orderId: 'ord_1', ...number, totalMinor: p.totalMinor, currency: 'EUR', finalizedAt },
    };
    given(invoiceDecider, [drafted]).when({ type: 'Finalize', number, at: finalizedAt }).then([finalized]);
    given(invoiceDecider, [drafted, finalized]).when({ type: 'Finalize', number, at: finalizedAt }).then([]);
  });
});
