/**
 * `/v1/billing/*`: a customer's quotes, checkout, orders and invoices
 * (docs/billing.md). Only their own: another user's order or invoice id
 * answers 404 like an unknown one.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ApiDeps } from '../app.js';
import { actorOf, principalOf, SIGNED_IN } from '../authenticate.js';
import { answers, listOf, READS, shape, WAITS } from '../contract.js';
import { answerWritten, MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { pricedJson } from '../../billing/pricing.js';
import { MAX_MONTHS } from '../../billing/checkout.js';
import { orderDecider } from '../../billing/order.decider.js';
import { INVOICES_PROJECTOR } from '../../../projectors/billing/invoices.projection.js';
import { ORDERS_PROJECTOR } from '../../../projectors/billing/orders.projection.js';
import { renderCreditNotePdf, renderInvoicePdf } from '../../billing/invoice-pdf.js';
import { HttpError } from '../errors.js';
import { body } from './schemas.js';
import { COUNTRY, IDEMPOTENCY_HEADERS, INVOICE, INVOICE_ID, ORDER, ORDER_ID, QUOTE } from './billing-schemas.js';

const PRICE_REQUEST = {
  planId: { type: 'string', minLength: 1, maxLength: 128 },
  months: { type: 'integer', minimum: 1, maximum: MAX_MONTHS, default: 1, description: 'calendar months in your time zone' },
  coupon: { type: ['string', 'null'], minLength: 1, maxLength: 32 },
  country: COUNTRY,
};
const LIST_QUERY = { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 } } } as const;

interface PriceBody {
  planId: string;
  months?: number;
  coupon?: string | null;
  country?: string;
  paymentMethodId?: string | null;
}

export function billingRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { billing } = deps;
  const tags = ['billing'];
  const config = { access: SIGNED_IN };

  app.post<{ Body: PriceBody }>(
    '/v1/billing/quote',
    { config, schema: { tags, summary: 'The itemised price of a plan for you now (lines, discount, tax, total); changes nothing', body: body(PRICE_REQUEST, ['planId']), response: answers({ 200: QUOTE }, [404, 409]) } },
    async (request) => pricedJson(await billing.checkout.quote(principalOf(request).userId, request.body)),
  );

  app.post<{ Body: PriceBody }>(
    '/v1/billing/checkout',
    {
      config,
      schema: {
        tags,
        summary: 'Order a plan. With Idempotency-Key: retries give the same order. Paid by the payment method given (or your default), else by hand (manual: the order waits for an operator)',
        headers: IDEMPOTENCY_HEADERS,
        body: body({ ...PRICE_REQUEST, paymentMethodId: { type: ['string', 'null'], minLength: 1, maxLength: 64 } }, ['planId']),
        response: answers({ 201: { ...ORDER, description: 'the order (a retry with the same key answers the same order, with Idempotent-Replayed: true)' } }, [...WAITS, 404, 409, 422]),
      },
    },
    async (request, reply) => {
      const { userId } = principalOf(request);
      const { orderId, seq, replayed } = await billing.checkout.checkout(userId, request.headers['idempotency-key'], request.body, actorOf(request));
      if (replayed) void reply.header('idempotent-replayed', 'true');
      return answerWritten(deps, reply, ORDERS_PROJECTOR, seq, 201, async () => stripSequence(await billing.queries.order(orderId, userId)));
    },
  );

  app.post<{ Body: { planId: string; months?: number; country?: string; paymentMethodId?: string | null } }>(
    '/v1/billing/subscription/change',
    {
      config,
      schema: {
        tags,
        summary: 'Change plans: an upgrade (a higher monthly price) now, with a credit for the unused part of the paid period; a downgrade at its end (ordered as the next renewal). With Idempotency-Key',
        headers: IDEMPOTENCY_HEADERS,
        body: body({ planId: PRICE_REQUEST.planId, months: { type: 'integer', minimum: 1, maximum: MAX_MONTHS, description: 'default: as many as the order you are on' }, country: COUNTRY, paymentMethodId: { type: ['string', 'null'], minLength: 1, maxLength: 64 } }, ['planId']),
        response: answers({ 201: shape({ change: { type: 'string', enum: ['upgrade', 'downgrade'] }, order: ORDER }) }, [...WAITS, 404, 409, 422]),
      },
    },
    async (request, reply) => {
      const { userId } = principalOf(request);
      const { orderId, change } = await billing.planChanges.change(userId, request.headers['idempotency-key'], request.body, actorOf(request));
      const { seq } = await billing.deps.load(orderDecider, 'order', orderId);
      return answerWritten(deps, reply, ORDERS_PROJECTOR, seq, 201, async () => ({ change, order: await billing.queries.order(orderId, userId) }));
    },
  );

  app.get<{ Querystring: { limit?: number } }>(
    '/v1/billing/orders',
    { config, schema: { tags, summary: 'Your orders, newest first', querystring: LIST_QUERY, response: answers({ 200: shape({ orders: listOf(ORDER) }) }, READS) } },
    async (request) => {
      await waitForProjection(deps, ORDERS_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return { orders: await billing.queries.orders({ userId: principalOf(request).userId, limit: request.query.limit }) };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/billing/orders/:id',
    { config, schema: { tags, summary: 'One of your orders', params: { type: 'object', required: ['id'], properties: { id: ORDER_ID } }, response: answers({ 200: ORDER }, [...READS, 404]) } },
    async (request) => {
      await waitForProjection(deps, ORDERS_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return billing.queries.order(request.params.id, principalOf(request).userId);
    },
  );

  app.get<{ Querystring: { limit?: number } }>(
    '/v1/billing/invoices',
    { config, schema: { tags, summary: 'Your invoices, newest first, with their credit notes', querystring: LIST_QUERY, response: answers({ 200: shape({ invoices: listOf(INVOICE) }) }, READS) } },
    async (request) => {
      await waitForProjection(deps, INVOICES_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return { invoices: await billing.queries.invoices({ userId: principalOf(request).userId, limit: request.query.limit }) };
    },
  );

  const invoiceParams = { type: 'object', required: ['id'], properties: { id: INVOICE_ID } } as const;
  app.get<{ Params: { id: string } }>(
    '/v1/billing/invoices/:id',
    { config, schema: { tags, summary: 'One of your invoices', params: invoiceParams, response: answers({ 200: INVOICE }, [...READS, 404]) } },
    async (request) => {
      await waitForProjection(deps, INVOICES_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return billing.queries.invoice(request.params.id, principalOf(request).userId);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/billing/invoices/:id/pdf',
    {
      config,
      schema: {
        tags,
        summary: 'One of your invoices as a PDF',
        params: invoiceParams,
        response: answers({ 200: PDF }, [...READS, 404]),
      },
    },
    async (request, reply) => {
      await waitForProjection(deps, INVOICES_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      const invoice = await billing.queries.invoice(request.params.id, principalOf(request).userId);
      return sendPdf(reply, invoice.number ?? invoice.id, await renderInvoicePdf(invoice, deps.seller, await billing.queries.billedTo(invoice.userId)));
    },
  );

  app.get<{ Params: { id: string; creditNoteId: string } }>(
    '/v1/billing/invoices/:id/credit-notes/:creditNoteId/pdf',
    {
      config,
      schema: {
        tags,
        summary: 'A credit note on one of your invoices as a PDF',
        params: { type: 'object', required: ['id', 'creditNoteId'], properties: { id: INVOICE_ID, creditNoteId: { type: 'string', pattern: '^cn_[0-9a-f]{32}$' } } },
        response: answers({ 200: PDF }, [...READS, 404]),
      },
    },
    async (request, reply) => {
      await waitForProjection(deps, INVOICES_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      const invoice = await billing.queries.invoice(request.params.id, principalOf(request).userId);
      const note = invoice.creditNotes.find((n) => n.id === request.params.creditNoteId);
      if (!note) throw new HttpError(404, 'credit_note_not_found', 'no such credit note on this invoice');
      return sendPdf(reply, note.number, await renderCreditNotePdf(invoice, note, deps.seller, await billing.queries.billedTo(invoice.userId)));
    },
  );
}

const PDF = { content: { 'application/pdf': { schema: { type: 'string', format: 'binary' } } } };

/** A document for the customer's eyes only: no shared cache may keep it. */
function sendPdf(reply: FastifyReply, name: string, pdf: Buffer): FastifyReply {
  return reply.header('content-type', 'application/pdf').header('content-disposition', `inline; filename="${name}.pdf"`).header('cache-control', 'private, no-store').send(pdf);
}

/** The order without the read model's sequence: answerWritten adds the write's. */
function stripSequence<T extends { sequence: number }>(view: T): Omit<T, 'sequence'> {
  const { sequence: _sequence, ...rest } = view;
  return rest;
}
