/**
 * `/v1/admin/webhooks`: integrators' endpoints for outgoing webhooks
 * (docs/billing-webhooks.md). Admins only: an endpoint sends the
 * installation's billing events to a URL of the admin's choosing. The signing
 * secret is in the answers of create and rotate-secret, and nowhere else.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Role } from '../../identity/roles.js';
import { WEBHOOK_TYPES } from '../../billing/webhook-events.js';
import type { ApiDeps } from '../app.js';
import { actorOf } from '../authenticate.js';
import { answers, INTEGER, listOf, nullable, READS, SEQUENCE, shape, STRING, TIME, WAITS } from '../contract.js';
import { answerWritten, MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { WEBHOOK_ENDPOINTS_PROJECTOR } from '../../../projectors/billing/webhook-endpoints.projection.js';
import { body, idParams, UUID } from './schemas.js';

const ADMIN: readonly Role[] = ['admin'];
const EVENT_TYPE = { type: 'string', enum: [...WEBHOOK_TYPES] } as const;

const ENDPOINT_PROPERTIES = {
  id: UUID,
  url: STRING,
  eventTypes: listOf(EVENT_TYPE),
  description: nullable(STRING),
  status: { type: 'string', enum: ['active', 'disabled'], description: 'disabled: its receiver answered 410 Gone; nothing more is sent' },
  disabledReason: nullable(STRING),
  createdAt: TIME,
  secretRotatedAt: nullable(TIME),
  disabledAt: nullable(TIME),
};
const ENDPOINT = shape(ENDPOINT_PROPERTIES);
const SECRET = { type: 'string', pattern: '^whsec_[A-Za-z0-9+/]+={0,2}$', description: 'the signing secret (Standard Webhooks); answered this once only' } as const;

const ATTEMPT = shape({
  attempt: INTEGER,
  startedAt: TIME,
  finishedAt: nullable({ ...TIME, description: 'null while in flight, or when the worker stopped before recording the answer' }),
  statusCode: nullable(INTEGER),
  latencyMs: nullable(INTEGER),
  error: nullable({ ...STRING, description: 'timeout, connection, target_not_allowed or http_<status>; null for a 2xx' }),
});
const DELIVERY = shape({
  webhookId: STRING,
  eventType: EVENT_TYPE,
  causeEventId: STRING,
  status: { type: 'string', enum: ['pending', 'delivered', 'failed', 'cancelled'] },
  attempts: listOf(ATTEMPT),
  nextAttemptAt: nullable(TIME),
  lastStatusCode: nullable(INTEGER),
  finalReason: nullable({ ...STRING, description: 'attempts_exhausted, endpoint_gone, no_answer_recorded, endpoint_disabled or endpoint_deleted' }),
  createdAt: TIME,
  finishedAt: nullable(TIME),
});

export function webhookRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { webhooks } = deps;
  const tags = ['billing'];
  const config = { access: ADMIN };
  const answerEndpoint = (reply: FastifyReply, seq: number, status: number, id: string, extra: Record<string, unknown> = {}) =>
    answerWritten(deps, reply, WEBHOOK_ENDPOINTS_PROJECTOR, seq, status, async (): Promise<Record<string, unknown>> => ({ ...(await webhooks.view(id)), ...extra }));

  app.post<{ Body: { url: string; eventTypes: string[]; description?: string | null } }>(
    '/v1/admin/webhooks',
    {
      config,
      schema: {
        tags,
        summary: 'Register a webhook endpoint; the answer carries its signing secret, once',
        response: answers({ 201: shape({ ...ENDPOINT_PROPERTIES, secret: SECRET, sequence: SEQUENCE }) }, WAITS),
        body: body(
          {
            url: { type: 'string', minLength: 1, maxLength: 2048, description: 'http or https; private and loopback targets are refused unless RG_WEBHOOK_ALLOW_PRIVATE=1' },
            eventTypes: { type: 'array', minItems: 1, maxItems: WEBHOOK_TYPES.length, items: EVENT_TYPE },
            description: { type: ['string', 'null'], maxLength: 200 },
          },
          ['url', 'eventTypes'],
        ),
      },
    },
    async (request, reply) => {
      const { seq, id, secret } = await webhooks.create(request.body, actorOf(request));
      return answerEndpoint(reply, seq, 201, id, { secret });
    },
  );

  app.get('/v1/admin/webhooks', { config, schema: { tags, summary: 'The webhook endpoints (deleted ones left out), oldest first; never their secrets', response: answers({ 200: shape({ endpoints: listOf(ENDPOINT) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, WEBHOOK_ENDPOINTS_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
    return { endpoints: await webhooks.list() };
  });

  app.get<{ Params: { id: string }; Querystring: { limit?: number } }>(
    '/v1/admin/webhooks/:id/deliveries',
    {
      config,
      schema: {
        tags,
        summary: "An endpoint's delivery log, newest first: every attempt with its status code and latency, the next retry, the final outcome",
        response: answers({ 200: shape({ deliveries: listOf(DELIVERY) }) }, [...READS, 404]),
        params: idParams,
        querystring: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 } } },
      },
    },
    async (request) => {
      await waitForProjection(deps, WEBHOOK_ENDPOINTS_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return { deliveries: await webhooks.deliveries(request.params.id, request.query.limit ?? 50) };
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/admin/webhooks/:id/rotate-secret',
    {
      config,
      schema: {
        tags,
        summary: 'Replace the signing secret (answered once); for 24 hours deliveries are signed with the old one too',
        response: answers({ 200: shape({ ...ENDPOINT_PROPERTIES, secret: SECRET, sequence: SEQUENCE }) }, [...WAITS, 404]),
        params: idParams,
      },
    },
    async (request, reply) => {
      const { seq, secret } = await webhooks.rotateSecret(request.params.id, actorOf(request));
      return answerEndpoint(reply, seq, 200, request.params.id, { secret });
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/admin/webhooks/:id',
    { config, schema: { tags, summary: 'Delete an endpoint: nothing more is sent to it, pending deliveries are cancelled', response: answers({ 200: shape({ sequence: SEQUENCE }) }, [...WAITS, 404]), params: idParams } },
    async (request, reply) => {
      const { seq } = await webhooks.delete(request.params.id, actorOf(request));
      return answerWritten(deps, reply, WEBHOOK_ENDPOINTS_PROJECTOR, seq, 200);
    },
  );
}
