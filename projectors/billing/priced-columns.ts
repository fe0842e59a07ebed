/** The priced columns orders and invoices share, from their events' flat fields (contracts/billing/OrderPlaced, InvoiceDrafted). */
import type { PricedEventFields } from '../../producers/billing/pricing.js';
import type { LineJson } from '../../schema/database.js';
import type { UnnestColumn } from '../runtime/unnest.js';


export function pricedColumns(d: PricedEventFields) {
  return {
    currency: d.currency,
    lines: d.lines.map((l): LineJson => ({ kind: l.kind, description: l.description, quantity: l.quantity, unitAmountMinor: Number(l.unitAmountMinor), amountMinor: Number(l.amountMinor) })),
    subtotal_minor: Number(d.subtotalMinor),
    tax_rate_bp: d.taxRateBasisPoints,
    tax_country: d.taxCountry,
    tax_minor: Number(d.taxMinor),
    total_minor: Number(d.totalMinor),
  };
}

type Priced = ReturnType<typeof pricedColumns>;

/** unnest columns for them: lines travel as JSON text. */
export function pricedUnnest<Row extends Priced>(): UnnestColumn<Row>[] {
  return [
    { name: 'currency', arrayType: 'text[]', value: (r) => r.currency },
    { name: 'lines', arrayType: 'jsonb[]', value: (r) => JSON.stringify(r.lines) },
    ...(['subtotal_minor', 'tax_minor', 'total_minor'] as const).map((name) => ({ name, arrayType: 'bigint[]', value: (r: Row) => r[name] })),
    { name: 'tax_rate_bp', arrayType: 'integer[]', value: (r) => r.tax_rate_bp },
    { name: 'tax_country', arrayType: 'text[]', value: (r) => r.tax_country },
  ];
}

/** Columns of one Postgres type, by name. */
export function typed<Row>(arrayType: string, names: readonly (keyof Row & string)[]): UnnestColumn<Row>[] {
  return names.map((name) => ({ name, arrayType, value: (r: Row) => r[name] }));
}
