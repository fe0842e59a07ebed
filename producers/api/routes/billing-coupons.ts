/**
 * `/v1/admin/billing/coupons`: discount coupons (docs/billing-coupons.md).
 * Admins only: a coupon is money off every order that names it. Customers
 * never call these; checkout and quotes use the coupons service directly.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Role } from '../../identity/roles.js';
import { COUPONS_PROJECTOR } from '../../../projectors/billing/coupons.projection.js';
import type { ApiDeps } from '../app.js';
import { actorOf } from '../authenticate.js';
import { answers, INTEGER, listOf, NO_CONTENT, nullable, READS, SEQUENCE, shape, STRING, TIME, WAITS } from '../contract.js';
import { answerWritten, MIN_SEQUENCE_HEADER, SEQUENCE_HEADER, waitForProjection, waitForSequence } from '../read-your-writes.js';
import { body } from './schemas.js';

const ADMIN: readonly Role[] = ['admin'];
const CODE = { type: 'string', pattern: '^[A-Za-z0-9-]{3,32}$', description: "3-32 of A-Z, 0-9 or '-'; case does not matter (stored upper-case)" } as const;
const KIND = { type: 'string', enum: ['percent', 'fixed'] } as const;
const codeParams = { type: 'object', required: ['code'], properties: { code: CODE } } as const;

const COUPON_PROPERTIES = {
  code: CODE,
  kind: KIND,
  percentOff: nullable({ ...INTEGER, description: 'percent: 1-100' }),
  amountOff: nullable({ type: 'object', additionalProperties: false, required: ['amountMinor', 'currency'], properties: { amountMinor: INTEGER, currency: STRING }, description: 'fixed: minor units off, at most the subtotal' }),
  expiresAt: nullable({ ...TIME, description: 'redeemable before this instant; null: never expires' }),
  maxUses: nullable({ ...INTEGER, description: 'null: unlimited' }),
  uses: { ...INTEGER, description: 'redemptions held by orders (released ones do not count)' },
  remaining: nullable({ ...INTEGER, description: 'null: unlimited' }),
  status: { type: 'string', enum: ['active', 'disabled', 'expired', 'exhausted'], description: 'as of the read' },
  disabledAt: nullable(TIME),
  createdAt: TIME,
};
const COUPON = shape(COUPON_PROPERTIES);

export function couponRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { coupons } = deps;
  const tags = ['billing'];
  const config = { access: ADMIN };
  const answerCoupon = (reply: FastifyReply, seq: number, status: number, code: string) =>
    answerWritten(deps, reply, COUPONS_PROJECTOR, seq, status, async (): Promise<Record<string, unknown>> => ({ ...(await coupons.view(code)) }));

  app.post<{ Body: Record<string, unknown> }>(
    '/v1/admin/billing/coupons',
    {
      config,
      schema: {
        tags,
        summary: 'Create a coupon: a percentage (percentOff) or a fixed amount in one currency (amountOffMinor, currency) off an order',
        response: answers({ 201: shape({ ...COUPON_PROPERTIES, sequence: SEQUENCE }) }, [...WAITS, 409]),
        // Types here; ranges and which fields go with which kind are the coupons service's rules (400 invalid_coupon naming the field).
        body: body(
          {
            code: CODE,
            kind: KIND,
            percentOff: { type: ['integer', 'null'] },
            amountOffMinor: { type: ['integer', 'null'] },
            currency: { type: ['string', 'null'], minLength: 3, maxLength: 3 },
            expiresAt: { type: ['string', 'null'], format: 'date-time' },
            maxUses: { type: ['integer', 'null'] },
          },
          ['code', 'kind'],
        ),
      },
    },
    async (request, reply) => {
      const { seq, code } = await coupons.create(request.body, actorOf(request));
      return answerCoupon(reply, seq, 201, code);
    },
  );

  app.get('/v1/admin/billing/coupons', { config, schema: { tags, summary: 'Every coupon, disabled ones too, by code', response: answers({ 200: shape({ coupons: listOf(COUPON) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, COUPONS_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
    return { coupons: await coupons.list() };
  });

  app.get<{ Params: { code: string } }>(
    '/v1/admin/billing/coupons/:code',
    { config, schema: { tags, summary: 'A coupon with its uses and what remains', response: answers({ 200: COUPON }, [...READS, 404]), params: codeParams } },
    async (request) => {
      await waitForProjection(deps, COUPONS_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return coupons.view(request.params.code);
    },
  );

  app.delete<{ Params: { code: string } }>(
    '/v1/admin/billing/coupons/:code',
    {
      config,
      schema: { tags, summary: 'Disable a coupon: no new redemptions; orders holding a use keep it. The sequence is in x-relaygrid-sequence', response: answers({ 204: NO_CONTENT }, [...WAITS, 404]), params: codeParams },
    },
    async (request, reply) => {
      const { seq } = await coupons.disable(request.params.code, actorOf(request));
      await waitForSequence(deps, COUPONS_PROJECTOR, seq);
      return reply.status(204).header(SEQUENCE_HEADER, String(seq)).send();
    },
  );
}
