/** `invoices` and `credit_notes`: what customers download and operators search; numbers unique per series (a unique index). */
import type { StoredEvent } from '../../contracts/envelope.js';
import type { CreditNoteTable, InvoiceTable } from '../../schema/database.js';
import { foldRows, storedById, type RowStep } from '../runtime/batch-fold.js';
import type { Projection } from '../runtime/projection.js';
import { upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';
import { pricedColumns, pricedUnnest, typed } from './priced-columns.js';

const INVOICE_COLUMNS: UnnestColumn<InvoiceTable>[] = [
  ...typed<InvoiceTable>('text[]', ['id', 'order_id', 'user_id', 'number', 'series', 'status', 'time_zone']),
  ...typed<InvoiceTable>('integer[]', ['sequence']),
  ...pricedUnnest<InvoiceTable>(),
  ...typed<InvoiceTable>('bigint[]', ['credited_minor', 'last_seq']),
  ...typed<InvoiceTable>('timestamptz[]', ['period_start', 'period_end', 'created_at', 'finalized_at', 'paid_at', 'voided_at']),
];

const CREDIT_NOTE_COLUMNS: UnnestColumn<CreditNoteTable>[] = [
  ...typed<CreditNoteTable>('text[]', ['id', 'invoice_id', 'user_id', 'number', 'series', 'currency', 'reason']),
  ...typed<CreditNoteTable>('integer[]', ['sequence']),
  ...typed<CreditNoteTable>('bigint[]', ['amount_minor']),
  ...typed<CreditNoteTable>('timestamptz[]', ['issued_at']),
];

function step(event: StoredEvent): RowStep<InvoiceTable> {
  const touch = (id: string, update: (row: InvoiceTable) => Partial<InvoiceTable>): RowStep<InvoiceTable> => ({ id, update: (row) => ({ ...row, ...update(row), last_seq: event.seq }) });
  switch (event.type) {
    case 'billing.InvoiceDrafted': {
      const d = event.data;
      const create: InvoiceTable = {
        id: d.invoiceId,
        order_id: d.orderId,
        user_id: d.userId,
        number: null,
        series: null,
        sequence: null,
        status: 'draft',
        ...pricedColumns(d),
        credited_minor: 0,
        period_start: d.periodStart,
        period_end: d.periodEnd,
        time_zone: d.timeZone,
        created_at: d.draftedAt,
        finalized_at: null,
        paid_at: null,
        voided_at: null,
        last_seq: event.seq,
      };
      return { id: d.invoiceId, create };
    }
    case 'billing.InvoiceFinalized': {
      const d = event.data;
      return touch(d.invoiceId, () => ({ status: 'finalized', number: d.number, series: d.series, sequence: d.sequence, finalized_at: d.finalizedAt }));
    }
    case 'billing.InvoicePaid':
      return touch(event.data.invoiceId, () => ({ status: 'paid', paid_at: event.data.paidAt }));
    case 'billing.InvoiceVoided':
      return touch(event.data.invoiceId, () => ({ status: 'void', voided_at: event.data.voidedAt }));
    case 'billing.CreditNoteIssued':
      return touch(event.data.invoiceId, (r) => ({ credited_minor: r.credited_minor + Number(event.data.amountMinor) }));
    default:
      return undefined;
  }
}

function creditNotes(events: readonly StoredEvent[], invoices: ReadonlyMap<string, InvoiceTable>): CreditNoteTable[] {
  return events.flatMap((event): CreditNoteTable[] => {
    if (event.type !== 'billing.CreditNoteIssued') return [];
    const d = event.data;
    const userId = invoices.get(d.invoiceId)?.user_id ?? '';
    return [{ id: d.creditNoteId, invoice_id: d.invoiceId, user_id: userId, number: d.number, series: d.series, sequence: d.sequence, amount_minor: Number(d.amountMinor), currency: d.currency, reason: d.reason, issued_at: d.issuedAt }];
  });
}

export const INVOICES_PROJECTOR = 'billing-invoices';

export const invoicesProjection: Projection = {
  name: INVOICES_PROJECTOR,
  context: 'billing',
  tables: ['invoices', 'credit_notes'],
  filter: (names) => names.aggregateSubjects('billing', 'invoice'),
  async apply(trx, events) {
    const rows = await foldRows(events, step, storedById<InvoiceTable>(trx, 'invoices'));
    await upsertUnnest(trx, 'invoices', INVOICE_COLUMNS, rows, ['id']);
    await upsertUnnest(trx, 'credit_notes', CREDIT_NOTE_COLUMNS, creditNotes(events, new Map(rows.map((r) => [r.id, r]))), ['id'], 'nothing');
  },
};
