/** The billing API's shapes (docs/billing.md): amounts are JSON integers of minor units of `currency`. */
import { INVOICE_LINE_KINDS, INVOICE_STATUSES } from '../../billing/invoice-view.js';
import { ORDER_KINDS, ORDER_STATUSES } from '../../billing/order.decider.js';
import { INTEGER, listOf, nullable, SEQUENCE, shape, STRING, TIME } from '../contract.js';

export const MINOR = { type: 'integer', description: 'integer minor units of currency (cents for EUR, yen for JPY)' } as const;
export const CURRENCY = { type: 'string', pattern: '^[A-Z]{3}$', description: 'ISO 4217' } as const;
export const ORDER_ID = { type: 'string', pattern: '^ord_[0-9a-f]{32}$' } as const;
export const INVOICE_ID = { type: 'string', pattern: '^inv_[0-9a-f]{32}$' } as const;
export const COUNTRY = { type: 'string', pattern: '^[A-Z]{2}$', description: 'ISO 3166-1 alpha-2: what tax applies (required when RG_TAX_RATES is set)' } as const;

export const LINE = shape({ kind: { type: 'string', enum: [...INVOICE_LINE_KINDS] }, description: STRING, quantity: INTEGER, unitAmountMinor: MINOR, amountMinor: MINOR });

export const PRICED_PROPERTIES = {
  currency: CURRENCY,
  lines: listOf(LINE),
  subtotalMinor: MINOR,
  taxRateBasisPoints: { type: 'integer', minimum: 0, description: '19% = 1900' },
  taxCountry: nullable(STRING),
  taxMinor: MINOR,
  totalMinor: MINOR,
};
export const QUOTE = shape(PRICED_PROPERTIES);

export const ORDER_PROPERTIES = {
  id: ORDER_ID,
  userId: STRING,
  status: { type: 'string', enum: [...ORDER_STATUSES] },
  kind: { type: 'string', enum: [...ORDER_KINDS] },
  planId: STRING,
  months: INTEGER,
  ...PRICED_PROPERTIES,
  coupon: nullable(STRING),
  provider: STRING,
  paymentMethodId: nullable(STRING),
  instructions: nullable({ ...STRING, description: 'how to pay a pending manual order: quote the order id as the reference' }),
  attempts: INTEGER,
  failureReason: nullable(STRING),
  nextAttemptAt: nullable(TIME),
  invoiceId: nullable(INVOICE_ID),
  periodStart: nullable(TIME),
  periodEnd: nullable(TIME),
  refundedMinor: MINOR,
  placedAt: TIME,
  paidAt: nullable(TIME),
  fulfilledAt: nullable(TIME),
  cancelledAt: nullable(TIME),
  sequence: SEQUENCE,
};
export const ORDER = shape(ORDER_PROPERTIES);

export const CREDIT_NOTE = shape({ id: STRING, number: STRING, amountMinor: MINOR, reason: STRING, issuedAt: TIME });
export const INVOICE = shape({
  id: INVOICE_ID,
  number: nullable({ ...STRING, description: 'YEAR-CURRENCY-NNNNNN, gapless per year and currency; null while a draft' }),
  status: { type: 'string', enum: [...INVOICE_STATUSES] },
  orderId: ORDER_ID,
  userId: STRING,
  ...PRICED_PROPERTIES,
  periodStart: nullable(TIME),
  periodEnd: nullable(TIME),
  createdAt: TIME,
  finalizedAt: nullable(TIME),
  paidAt: nullable(TIME),
  voidedAt: nullable(TIME),
  creditNotes: listOf(CREDIT_NOTE),
  timeZone: STRING,
});

export const IDEMPOTENCY_HEADERS = {
  type: 'object',
  properties: { 'idempotency-key': { type: 'string', minLength: 1, maxLength: 255, description: 'required: retries with the same key give the same answer and one effect' } },
} as const;
