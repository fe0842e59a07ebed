/**
 * Billing's endpoints on the `relaygrid-ops` NATS service (ops-service.ts):
 * the admin billing API's operations (producers/api/routes/admin-billing.ts)
 * with JSON bodies, and its refusals' codes and statuses. A write answers the
 * order once the read models show it, with its `sequence`.
 */
import type { Billing } from '../../producers/billing/billing.js';
import type { Search } from '../../producers/billing/billing-queries.js';
import { INVOICE_STATUSES } from '../../producers/billing/invoice-view.js';
import { ORDER_STATUSES } from '../../producers/billing/order.decider.js';
import { KEY as REFUND_KEY } from '../../producers/billing/refunds.js';
import { DomainError } from '../../producers/decider.js';
import { required, type OpsHandler } from '../fleet/ops-request.js';
import { projectedOrder, type ProjectionWait } from './projected-order.js';

/** Endpoints by group under `<ops>.billing` ('' for the group itself), then by name. */
export type BillingOps = Record<string, Record<string, OpsHandler>>;

const invalid = (field: string, rule: string) => new DomainError('invalid_request', `${field}: ${rule}`, { field });

/** An optional string field of 1 to `max` characters. */
function text(body: Record<string, unknown>, field: string, max: number): string | undefined {
  const value = body[field];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length < 1 || value.length > max) throw invalid(field, `1-${max} characters`);
  return value;
}

function instant(body: Record<string, unknown>, field: string): Date | undefined {
  const value = text(body, field, 40);
  if (value === undefined) return undefined;
  const at = new Date(value);
  if (Number.isNaN(at.getTime())) throw invalid(field, 'an ISO 8601 date-time');
  return at;
}

/** The search the API's querystring gives, from a request body: userId, status, number, from, to, limit (1-500). */
function searchOf(body: Record<string, unknown>, statuses: readonly string[]): Search {
  const status = text(body, 'status', 20);
  if (status !== undefined && !statuses.includes(status)) throw invalid('status', `one of ${statuses.join(', ')}`);
  const limit = body['limit'];
  if (limit !== undefined && (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 500)) throw invalid('limit', 'a whole number from 1 to 500');
  return { userId: text(body, 'userId', 64), status, number: text(body, 'number', 40), from: instant(body, 'from'), to: instant(body, 'to'), limit: limit ?? 50 };
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

function day(body: Record<string, unknown>, field: string): string {
  const value = required(body[field], field);
  if (!DAY.test(value)) throw invalid(field, 'a local date, YYYY-MM-DD');
  return value;
}

export function billingOps(billing: Billing, wait: ProjectionWait): BillingOps {
  const orderId = (body: Record<string, unknown>) => required(body['orderId'], 'orderId');
  const actor = (by: string) => ({ actor: by });
  return {
    orders: {
      list: async (body) => ({ orders: await billing.queries.orders(searchOf(body, ORDER_STATUSES)) }),
      get: (body) => billing.queries.order(orderId(body)),
      confirm: async (body, by) => {
        await billing.payments.confirm(orderId(body), body, actor(by));
        return projectedOrder(billing, wait, orderId(body));
      },
      cancel: async (body, by) => {
        await billing.payments.cancel(orderId(body), text(body, 'reason', 200) ?? 'cancelled by an operator', actor(by));
        return projectedOrder(billing, wait, orderId(body));
      },
      refund: async (body, by) => {
        const key = body['idempotencyKey'];
        // The API's code for a missing key, named as this request names it: a retry with the same key refunds once.
        if (typeof key !== 'string' || !REFUND_KEY.test(key)) throw new DomainError('idempotency_key_required', 'idempotencyKey: 1-255 printable ASCII characters (a UUID, say); a retry with the same key refunds once', { field: 'idempotencyKey' });
        await billing.refunds.refund(orderId(body), key, body, actor(by));
        return projectedOrder(billing, wait, orderId(body));
      },
    },
    invoices: {
      list: async (body) => ({ invoices: await billing.queries.invoices(searchOf(body, INVOICE_STATUSES)) }),
      get: (body) => billing.queries.invoice(required(body['invoiceId'], 'invoiceId')),
    },
    '': {
      revenue: async (body) => {
        const from = day(body, 'from');
        const to = day(body, 'to');
        if (from >= to) throw invalid('to', 'must be after from');
        return { timeZone: billing.timeZone, days: await billing.queries.revenueBetweenDays(from, to) };
      },
    },
  };
}
