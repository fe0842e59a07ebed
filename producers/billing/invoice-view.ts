/**
 * An invoice as its readers see it: the API's JSON (`GET /v1/billing/invoices/:id`),
 * the PDF (invoice-pdf.ts) and the operator's search. Money is integer minor
 * units of the invoice's one currency (money.ts); times are instants, shown to
 * people in the customer's IANA zone.
 */

export const INVOICE_STATUSES = ['draft', 'finalized', 'paid', 'void'] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

export const INVOICE_LINE_KINDS = ['plan', 'proration', 'discount', 'overage'] as const;
export type InvoiceLineKind = (typeof INVOICE_LINE_KINDS)[number];

export interface InvoiceLineView {
  kind: InvoiceLineKind;
  /** What the line is for, in words: "Pro, 3 months", "Coupon SPRING (20%)". */
  description: string;
  /** Months for a plan line, GiB for overage, 1 otherwise. */
  quantity: number;
  unitAmountMinor: number;
  /** quantity × unit, rounded once; negative for credits and discounts. */
  amountMinor: number;
}

export interface CreditNoteView {
  id: string;
  /** `CN-2026-EUR-000001`: a series of its own, gapless like the invoices'. */
  number: string;
  amountMinor: number;
  reason: string;
  issuedAt: string;
}

export interface InvoiceView {
  id: string;
  /** `2026-EUR-000042`: gapless per year (in the seller's zone) and currency; null while a draft. */
  number: string | null;
  status: InvoiceStatus;
  orderId: string;
  userId: string;
  currency: string;
  lines: InvoiceLineView[];
  /** Sum of the lines before tax (discounts included). */
  subtotalMinor: number;
  /** Tax rate in basis points (19% = 1900) and the country it is for; 0 and null when none applies. */
  taxRateBasisPoints: number;
  taxCountry: string | null;
  taxMinor: number;
  totalMinor: number;
  /** The service period the invoice covers. */
  periodStart: string | null;
  periodEnd: string | null;
  createdAt: string;
  finalizedAt: string | null;
  paidAt: string | null;
  voidedAt: string | null;
  creditNotes: CreditNoteView[];
  /** The customer's zone: what the PDF shows dates in. */
  timeZone: string;
}
