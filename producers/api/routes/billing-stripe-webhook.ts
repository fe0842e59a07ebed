/**
 * `POST /v1/billing/webhooks/stripe`: Stripe's deliveries (docs/billing.md#stripe).
 * No bearer token — the Stripe-Signature over the raw body is the
 * authentication — so this route parses nothing: inside its own plugin the
 * JSON parser is replaced by one that keeps the bytes as they came, which is
 * what the signature covers. Registered only when Stripe is configured.
 */
import type { FastifyInstance } from 'fastify';
import { WEBHOOK_OUTCOMES } from '../../billing/providers/stripe-webhooks.js';
import type { ApiDeps } from '../app.js';
import { answers, shape, STRING } from '../contract.js';

const RECEIVED = shape({
  eventId: { ...STRING, description: "Stripe's event id (evt_…)" },
  outcome: { type: 'string', enum: [...WEBHOOK_OUTCOMES], description: 'applied or rejected: acted on now; duplicate: acted on before; ignored: not an event billing follows' },
});

/** Stripe's events are a few KiB; a PaymentIntent with many charges stays far below this. */
const WEBHOOK_BODY_LIMIT = 256 * 1024;

export function stripeWebhookRoutes(app: FastifyInstance, deps: Pick<ApiDeps, 'stripeWebhooks'>): void {
  const webhooks = deps.stripeWebhooks;
  if (!webhooks) return;
  void app.register((scoped, _opts, done) => {
    scoped.removeAllContentTypeParsers();
    scoped.addContentTypeParser('application/json', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_LIMIT }, (_request, body, parsed) => parsed(null, body));
    scoped.post(
      '/v1/billing/webhooks/stripe',
      {
        config: { access: 'public' },
        bodyLimit: WEBHOOK_BODY_LIMIT,
        schema: {
          tags: ['billing'],
          summary: "Stripe's webhook: verified by its Stripe-Signature (at most 300 s old), acted on once per event id",
          headers: { type: 'object', properties: { 'stripe-signature': { ...STRING, description: 't=<unix seconds>,v1=<HMAC-SHA256 of "t.body">' } } },
          response: answers({ 200: RECEIVED }, [400]),
        },
      },
      (request) => webhooks.receive(request.body, request.headers['stripe-signature'], request.id),
    );
    done();
  });
}
