/**
 * `/v1/admin/billing/*`: operators' view of billing (docs/billing.md):
 * search orders and invoices, confirm a manual payment, cancel an unpaid
 * order, refund (a credit note), revenue per day and plan.
 */
import type { FastifyInstance } from 'fastify';
import type { Role } from '../../identity/roles.js';
import type { ApiDeps } from '../app.js';
import { actorOf } from '../authenticate.js';
import { HttpError } from '../errors.js';
import { answers, INTEGER, listOf, READS, shape, STRING, WAITS } from '../contract.js';
import { answerWritten, MIN_SEQUENCE_HEADER, waitForProjection, waitForSequence } from '../read-your-writes.js';
import { invoiceDecider } from '../../billing/invoice.decider.js';
import { ORDER_STATUSES, orderDecider } from '../../billing/order.decider.js';
import { INVOICE_STATUSES } from '../../billing/invoice-view.js';
import { INVOICES_PROJECTOR } from '../../../projectors/billing/invoices.projection.js';
import { ORDERS_PROJECTOR } from '../../../projectors/billing/orders.projection.js';
import { body } from './schemas.js';
import { CURRENCY, IDEMPOTENCY_HEADERS, INVOICE, MINOR, ORDER, ORDER_ID } from './billing-schemas.js';

const OPERATORS: readonly Role[] = ['admin', 'operator'];
const DAY = { type: 'string', pattern: '^\\d{4}-\\d{2}-\\d{2}$', description: 'a local date in RG_BILLING_TIME_ZONE' } as const;
const SEARCH = {
  userId: { type: 'string', minLength: 1, maxLength: 64 },
  from: { type: 'string', format: 'date-time' },
  to: { type: 'string', format: 'date-time' },
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
};
const orderParams = { type: 'object', required: ['id'], properties: { id: ORDER_ID } } as const;

interface SearchQuery {
  userId?: string;
  status?: string;
  number?: string;
  from?: string;
  to?: string;
  limit?: number;
}

const search = (q: SearchQuery) => ({ userId: q.userId, status: q.status, number: q.number, from: q.from ? new Date(q.from) : undefined, to: q.to ? new Date(q.to) : undefined, limit: q.limit });

export function adminBillingRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { billing } = deps;
  const tags = ['billing'];
  const config = { access: OPERATORS };
  /** The order once the read models show it, and its invoice too: the operator's next read sees both. */
  const answerOrder = async (reply: Parameters<typeof answerWritten>[1], orderId: string) => {
    const { seq, state } = await billing.deps.load(orderDecider, 'order', orderId);
    if (state.fulfilled) await waitForSequence(deps, INVOICES_PROJECTOR, (await billing.deps.load(invoiceDecider, 'invoice', state.fulfilled.invoiceId)).seq);
    return answerWritten(deps, reply, ORDERS_PROJECTOR, seq, 200, async () => {
      const { sequence: _s, ...view } = await billing.queries.order(orderId);
      return view;
    });
  };

  app.get<{ Querystring: SearchQuery }>(
    '/v1/admin/billing/orders',
    {
      config,
      schema: {
        tags,
        summary: 'Search orders (newest first): by customer, status, placement time',
        querystring: { type: 'object', additionalProperties: false, properties: { ...SEARCH, status: { type: 'string', enum: [...ORDER_STATUSES] } } },
        response: answers({ 200: shape({ orders: listOf(ORDER) }) }, READS),
      },
    },
    async (request) => {
      await waitForProjection(deps, ORDERS_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return { orders: await billing.queries.orders(search(request.query)) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/admin/billing/orders/:id',
    { config, schema: { tags, summary: 'Any order', params: orderParams, response: answers({ 200: ORDER }, [...READS, 404]) } },
    async (request) => {
      await waitForProjection(deps, ORDERS_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return billing.queries.order(request.params.id);
    },
  );

  app.post<{ Params: { id: string }; Body: { reference: string; amountMinor?: number } }>(
    '/v1/admin/billing/orders/:id/confirm',
    {
      config,
      schema: {
        tags,
        summary: "Confirm a manual order's payment with its reference: the order is paid, invoiced and fulfilled. Confirming again with the same reference changes nothing",
        params: orderParams,
        body: body({ reference: { type: 'string', minLength: 1, maxLength: 128 }, amountMinor: { ...MINOR, minimum: 0 } }, ['reference']),
        response: answers({ 200: ORDER }, [...WAITS, 404, 409]),
      },
    },
    async (request, reply) => {
      await billing.payments.confirm(request.params.id, request.body, actorOf(request));
      return answerOrder(reply, request.params.id);
    },
  );

  app.post<{ Params: { id: string }; Body: { reason?: string } }>(
    '/v1/admin/billing/orders/:id/cancel',
    {
      config,
      schema: { tags, summary: 'Cancel an unpaid order', params: orderParams, body: body({ reason: { type: 'string', minLength: 1, maxLength: 200 } }, []), response: answers({ 200: ORDER }, [...WAITS, 404, 409]) },
    },
    async (request, reply) => {
      await billing.payments.cancel(request.params.id, request.body.reason ?? 'cancelled by an operator', actorOf(request));
      return answerOrder(reply, request.params.id);
    },
  );

  app.post<{ Params: { id: string }; Body: { amountMinor?: number; reason?: string } }>(
    '/v1/admin/billing/orders/:id/refund',
    {
      config,
      schema: {
        tags,
        summary: 'Refund a fulfilled order, all or part, through its provider; its invoice gets a credit note. With Idempotency-Key: a retry refunds once',
        params: orderParams,
        headers: IDEMPOTENCY_HEADERS,
        body: body({ amountMinor: { ...MINOR, minimum: 1, description: 'default: what is left to refund' }, reason: { type: 'string', minLength: 1, maxLength: 200 } }, []),
        response: answers({ 200: ORDER }, [...WAITS, 404, 409]),
      },
    },
    async (request, reply) => {
      await billing.refunds.refund(request.params.id, request.headers['idempotency-key'], request.body, actorOf(request));
      return answerOrder(reply, request.params.id);
    },
  );

  app.get<{ Querystring: SearchQuery }>(
    '/v1/admin/billing/invoices',
    {
      config,
      schema: {
        tags,
        summary: 'Search invoices (newest first): by customer, number, status, creation time',
        querystring: { type: 'object', additionalProperties: false, properties: { ...SEARCH, status: { type: 'string', enum: [...INVOICE_STATUSES] }, number: { type: 'string', minLength: 1, maxLength: 40 } } },
        response: answers({ 200: shape({ invoices: listOf(INVOICE) }) }, READS),
      },
    },
    async (request) => {
      await waitForProjection(deps, INVOICES_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return { invoices: await billing.queries.invoices(search(request.query)) };
    },
  );

  app.get<{ Querystring: { from: string; to: string } }>(
    '/v1/admin/billing/revenue',
    {
      config,
      schema: {
        tags,
        summary: 'Money in per local day and plan: paid orders on the day they were paid, refunds on the day they were issued; [from, to) as local dates',
        querystring: { type: 'object', additionalProperties: false, required: ['from', 'to'], properties: { from: DAY, to: DAY } },
        response: answers({ 200: shape({ timeZone: STRING, days: listOf(shape({ day: DAY, planId: STRING, currency: CURRENCY, orders: INTEGER, grossMinor: MINOR, refundedMinor: MINOR, netMinor: MINOR })) }) }, READS),
      },
    },
    async (request) => {
      const { from, to } = request.query;
      if (from >= to) throw new HttpError(400, 'invalid_querystring', 'to: must be after from', 'to');
      await waitForProjection(deps, ORDERS_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return { timeZone: billing.timeZone, days: await billing.queries.revenueBetweenDays(from, to) };
    },
  );
}
