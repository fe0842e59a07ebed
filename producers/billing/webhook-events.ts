/**
 * Which events of the log become which outgoing webhooks, and what their
 * payload carries: THE mapping table (docs/billing-webhooks.md). Rows are
 * keyed by catalogue key as a string; adding a webhook is adding a row
 * (tests/unit/billing-webhooks.test.ts checks each row against its event).
 *
 * `fields` is an allow-list: only these plain fields of the event's data go
 * out, so nothing sealed and nothing personal (emails, names, addresses,
 * client IPs) can reach an integrator by accident. Ids are fine.
 * tests/unit/billing-webhooks.test.ts checks every row whose event exists
 * against its schema: each field is there, and none is `bytes`.
 */
import { EVENT_CONTEXTS, type EventContext } from '../../contracts/catalogue.js';
import type { StoredEvent } from '../../contracts/envelope.js';

export interface WebhookEventRow {
  /** The webhook type integrators subscribe to (`order.paid`). */
  type: string;
  /** The name the aggregate id (the subject's last token) takes in `data`. */
  idField: string;
  /** Plain fields of the event's data copied into `data`; a field the event lacks is left out. */
  fields: readonly string[];
}

export const WEBHOOK_EVENTS: Readonly<Record<string, WebhookEventRow>> = {
  // Orders (producers/billing/order.decider.ts) and invoices (invoice.decider.ts).
  'billing.OrderPaid': { type: 'order.paid', idField: 'orderId', fields: ['userId', 'amountMinor', 'currency', 'provider', 'paidAt'] },
  'billing.InvoiceFinalized': { type: 'invoice.finalized', idField: 'invoiceId', fields: ['userId', 'orderId', 'number', 'totalMinor', 'currency', 'finalizedAt'] },
  'billing.InvoicePaymentFailed': { type: 'invoice.payment_failed', idField: 'invoiceId', fields: ['userId', 'orderId', 'number', 'reason', 'attempt', 'retryable', 'failedAt'] },
  // Subscriptions (`plans.subscription.<userId>`): extended by a paid renewal or more months, past due by an unpaid renewal.
  'plans.SubscriptionExtended': { type: 'subscription.renewed', idField: 'userId', fields: ['orderId', 'planId', 'expiresAt', 'extendedAt'] },
  'plans.SubscriptionPastDue': { type: 'subscription.past_due', idField: 'userId', fields: ['invoiceId', 'graceUntil', 'markedAt'] },
  'plans.SubscriptionLimited': { type: 'subscription.limited', idField: 'userId', fields: ['periodStart', 'cause', 'usedBytes', 'limitedAt'] },
};

/** Every webhook type, in the table's order: what an endpoint may subscribe to. */
export const WEBHOOK_TYPES: readonly string[] = [...new Set(Object.values(WEBHOOK_EVENTS).map((row) => row.type))];

/** The context streams the table reads: one outbox feeder per stream (nats-server 2.9 has no multi-filter consumers). */
export function webhookContexts(): EventContext[] {
  const contexts = new Set<EventContext>();
  for (const key of Object.keys(WEBHOOK_EVENTS)) {
    const context = key.slice(0, key.indexOf('.'));
    if (!(EVENT_CONTEXTS as readonly string[]).includes(context)) throw new Error(`webhook table row ${key}: "${context}" is not an event context`);
    contexts.add(context as EventContext);
  }
  return [...contexts];
}

/** The Standard Webhooks payload: `{type, timestamp, data}`; timestamp is when the cause happened, not when it is sent. */
export interface WebhookPayload {
  type: string;
  timestamp: string;
  data: Record<string, unknown>;
}

/**
 * One value as JSON: times as RFC 3339, byte counts (`…Bytes`) as decimal
 * strings like the plans API, other 64-bit integers (money in minor units) as
 * JSON integers like the billing API. Bytes never go out.
 */
function jsonValue(name: string, value: unknown): unknown {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return name.endsWith('Bytes') || value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER) ? value.toString() : Number(value);
  if (value instanceof Uint8Array) return undefined;
  if (Array.isArray(value)) return value.map((v: unknown) => jsonValue(name, v));
  return value;
}

/** The row an event maps to, if any. */
export function webhookRowOf(eventType: string): WebhookEventRow | undefined {
  return Object.hasOwn(WEBHOOK_EVENTS, eventType) ? WEBHOOK_EVENTS[eventType] : undefined;
}

/** The payload of a mapped event; `aggregateId` is its subject's id. */
export function webhookPayload(event: Pick<StoredEvent, 'data' | 'time'>, row: WebhookEventRow, aggregateId: string): WebhookPayload {
  const source = event.data as unknown as Record<string, unknown>;
  const data: Record<string, unknown> = { [row.idField]: aggregateId };
  for (const field of row.fields) {
    const value = jsonValue(field, source[field]);
    if (value !== undefined) data[field] = value;
  }
  return { type: row.type, timestamp: event.time.toISOString(), data };
}
