/**
 * The price of an order, as lines: pure, so a quote, the order it becomes and
 * the invoice drafted from it are the same numbers, and replaying the log
 * reproduces them. Prices are tax-exclusive; tax is computed once on the
 * subtotal (one rounding per document, half away from zero), never per line.
 */
import type { InvoiceLineKind } from './invoice-view.js';
import { mulDiv, type Money } from './money.js';

export interface PriceLine {
  kind: InvoiceLineKind;
  description: string;
  quantity: number;
  unitAmountMinor: bigint;
  amountMinor: bigint;
}

export interface Priced {
  currency: string;
  lines: PriceLine[];
  subtotalMinor: bigint;
  taxRateBasisPoints: number;
  taxCountry: string | null;
  taxMinor: bigint;
  totalMinor: bigint;
}

/** A reduction of the price: a coupon's discount, an upgrade's credit for unused time. Positive amounts. */
export interface Reduction {
  kind: Extract<InvoiceLineKind, 'discount' | 'proration'>;
  description: string;
  amountMinor: bigint;
}

export interface PriceInput {
  plan: { planId: string; name: string; price: Money };
  months: number;
  /** Applied in order, each capped at what is left: the subtotal never goes below zero. */
  reductions?: Reduction[];
  /** Overage: billable units (GiB) above the allowance at a unit price. */
  overage?: { description: string; quantity: number; unitAmountMinor: bigint } | null;
  tax: { country: string | null; rateBasisPoints: number };
}

export function price(input: PriceInput): Priced {
  const { plan, months } = input;
  const lines: PriceLine[] = [
    { kind: 'plan', description: `${plan.name}, ${months} month${months === 1 ? '' : 's'}`, quantity: months, unitAmountMinor: plan.price.amountMinor, amountMinor: plan.price.amountMinor * BigInt(months) },
  ];
  if (input.overage && input.overage.quantity > 0) {
    const { description, quantity, unitAmountMinor } = input.overage;
    lines.push({ kind: 'overage', description, quantity, unitAmountMinor, amountMinor: unitAmountMinor * BigInt(quantity) });
  }
  let subtotal = lines.reduce((sum, l) => sum + l.amountMinor, 0n);
  for (const r of input.reductions ?? []) {
    const amount = r.amountMinor < subtotal ? r.amountMinor : subtotal;
    if (amount <= 0n) continue;
    lines.push({ kind: r.kind, description: r.description, quantity: 1, unitAmountMinor: -amount, amountMinor: -amount });
    subtotal -= amount;
  }
  const taxMinor = input.tax.rateBasisPoints === 0 ? 0n : mulDiv(subtotal, BigInt(input.tax.rateBasisPoints), 10_000n);
  return {
    currency: plan.price.currency,
    lines,
    subtotalMinor: subtotal,
    taxRateBasisPoints: input.tax.rateBasisPoints,
    taxCountry: input.tax.rateBasisPoints === 0 ? null : input.tax.country,
    taxMinor,
    totalMinor: subtotal + taxMinor,
  };
}

/** Priced as events carry it (OrderPlaced, InvoiceDrafted): flat fields, line kinds as plain strings. */
export type PricedEventFields = Omit<Priced, 'lines'> & { lines: (Omit<PriceLine, 'kind'> & { kind: string })[] };

/** The priced fields as events carry them (OrderPlaced, InvoiceDrafted: flat, lines as records). */
export function pricedFields(p: Priced) {
  const { currency, subtotalMinor, taxRateBasisPoints, taxCountry, taxMinor, totalMinor } = p;
  return { currency, lines: p.lines.map((l) => ({ ...l })), subtotalMinor, taxRateBasisPoints, taxCountry, taxMinor, totalMinor };
}

/** The priced fields of an event, back as a Priced (line kinds are the pricing's own). */
export function pricedOf(d: PricedEventFields): Priced {
  const { currency, subtotalMinor, taxRateBasisPoints, taxCountry, taxMinor, totalMinor } = d;
  return { currency, lines: d.lines.map((l) => ({ ...l, kind: l.kind as PriceLine['kind'] })), subtotalMinor, taxRateBasisPoints, taxCountry, taxMinor, totalMinor };
}

/** JSON for answers: 64-bit amounts as JSON integers (safe far beyond any price; money.ts). */
export function pricedJson(p: Priced) {
  return {
    currency: p.currency,
    lines: p.lines.map((l) => ({ kind: l.kind, description: l.description, quantity: l.quantity, unitAmountMinor: Number(l.unitAmountMinor), amountMinor: Number(l.amountMinor) })),
    subtotalMinor: Number(p.subtotalMinor),
    taxRateBasisPoints: p.taxRateBasisPoints,
    taxCountry: p.taxCountry,
    taxMinor: Number(p.taxMinor),
    totalMinor: Number(p.totalMinor),
  };
}
