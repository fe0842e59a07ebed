/**
 * `/v1/billing/payment-methods`: the caller's saved payment methods
 * (docs/billing-payment-methods.md). Any signed-in user, their own methods
 * only: someone else's id answers exactly like an unknown one (404). A method
 * is saved from a provider's token; the answers carry the brand, last four
 * and expiry the provider gave, never the token. The card-data guard
 * (../card-data-guard.ts) refuses card numbers before these handlers run.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ApiDeps } from '../app.js';
import { actorOf, principalOf, SIGNED_IN } from '../authenticate.js';
import { answers, BOOLEAN, INTEGER, listOf, NO_CONTENT, READS, SEQUENCE, shape, STRING, TIME, WAITS } from '../contract.js';
import { answerWritten, MIN_SEQUENCE_HEADER, SEQUENCE_HEADER, waitForProjection, waitForSequence } from '../read-your-writes.js';
import { PAYMENT_METHODS_PROJECTOR } from '../../../projectors/billing/payment-methods.projection.js';
import { body, idParams, UUID } from './schemas.js';

const METHOD_PROPERTIES = {
  id: UUID,
  provider: { ...STRING, description: 'the provider holding the card, e.g. stripe' },
  brand: { ...STRING, description: "as the provider names it: visa, mastercard, amex, …" },
  last4: { type: 'string', pattern: '^[0-9]{4}$' },
  expMonth: { ...INTEGER, minimum: 1, maximum: 12 },
  expYear: INTEGER,
  isDefault: { ...BOOLEAN, description: 'what checkout and renewals charge when no method is named; exactly one while any is saved' },
  addedAt: TIME,
};
const METHOD = shape(METHOD_PROPERTIES);
const WRITTEN_METHOD = shape({ ...METHOD_PROPERTIES, sequence: SEQUENCE });

export function paymentMethodRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { paymentMethods } = deps;
  const tags = ['billing'];
  const config = { access: SIGNED_IN };
  const answerMethod = (reply: FastifyReply, userId: string, id: string, seq: number, status: number) =>
    answerWritten(deps, reply, PAYMENT_METHODS_PROJECTOR, seq, status, async (): Promise<Record<string, unknown>> => ({ ...(await paymentMethods.view(userId, id)) }));

  app.get('/v1/billing/payment-methods', { config, schema: { tags, summary: 'Your saved payment methods, oldest first; never their tokens', response: answers({ 200: shape({ paymentMethods: listOf(METHOD) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, PAYMENT_METHODS_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
    return { paymentMethods: await paymentMethods.list(principalOf(request).userId) };
  });

  app.post<{ Body: { provider: string; token: string; makeDefault?: boolean } }>(
    '/v1/billing/payment-methods',
    {
      config,
      schema: {
        tags,
        summary: 'Save a payment method from the provider token of a card (never the card number); the first one is the default. The same token again answers the method already saved',
        response: answers({ 201: WRITTEN_METHOD }, [...WAITS, 409]),
        body: body(
          {
            provider: { type: 'string', minLength: 1, maxLength: 32, description: 'a provider that saves cards: stripe' },
            token: { type: 'string', minLength: 1, maxLength: 255, description: "the provider's reference to the card (stripe: cus_…/pm_…, the Customer and the PaymentMethod attached to it)" },
            makeDefault: BOOLEAN,
          },
          ['provider', 'token'],
        ),
      },
    },
    async (request, reply) => {
      const { userId } = principalOf(request);
      // One success status per operation (the contract): a second save of the same card answers 201 too, with the saved method.
      const { seq, id } = await paymentMethods.add(userId, request.body, actorOf(request));
      return answerMethod(reply, userId, id, seq, 201);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/billing/payment-methods/:id',
    { config, schema: { tags, summary: 'Remove a payment method; when it was the default, the most recently added remaining one becomes the default', response: answers({ 204: NO_CONTENT }, [...WAITS, 404]), params: idParams } },
    async (request, reply) => {
      const { seq } = await paymentMethods.remove(principalOf(request).userId, request.params.id, actorOf(request));
      // No body to carry the sequence: the header does, once the list no longer shows the method.
      await waitForSequence(deps, PAYMENT_METHODS_PROJECTOR, seq);
      return reply.status(204).header(SEQUENCE_HEADER, String(seq)).send();
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/billing/payment-methods/:id/default',
    { config, schema: { tags, summary: 'Make a payment method the default', response: answers({ 200: WRITTEN_METHOD }, [...WAITS, 404]), params: idParams } },
    async (request, reply) => {
      const { userId } = principalOf(request);
      const { seq } = await paymentMethods.setDefault(userId, request.params.id, actorOf(request));
      return answerMethod(reply, userId, request.params.id, seq, 200);
    },
  );
}
