/**
 * Plans and subscriptions (docs/plans.md): the public catalogue, operators'
 * catalogue changes, grants of plans and top-ups to users, and each user's own
 * subscription and time zone. Bytes travel as decimal strings: JSON numbers
 * lose precision past 2^53. The schemas check shapes; the rules (currencies,
 * next plans, zones) are the plans context's, whose 400s name the field.
 */
import type { FastifyInstance } from 'fastify';
import { PROFILE_KINDS } from '../../fleet/model.js';
import { OVERAGES, VALIDITY_KINDS } from '../../plans/model.js';
import { checkTimeZone, RESET_STRATEGIES } from '../../plans/periods.js';
import { SUBSCRIPTION_STATUSES } from '../../plans/subscription.decider.js';
import type { ApiDeps } from '../app.js';
import { actorOf, principalOf, SIGNED_IN } from '../authenticate.js';
import { answers, BOOLEAN, INTEGER, listOf, nullable, READS, SEQUENCE, shape, STRING, STRINGS, TIME, WAITS } from '../contract.js';
import { answerWritten, MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { OPERATOR } from './fleet-nodes.js';
import { body, idParams } from './schemas.js';

const PLAN_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,128}$' } as const;
const BYTES = { type: 'string', pattern: '^(0|[1-9][0-9]{0,18})$', description: 'a whole number of bytes, as a decimal string' } as const;
const REQUEST_ID = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$' } as const;
const planParams = { type: 'object', required: ['id'], properties: { id: PLAN_ID } } as const;

const VALIDITY = body({ kind: { type: 'string', enum: [...VALIDITY_KINDS] }, days: { type: 'integer' }, timeoutDays: { type: 'integer' } }, ['kind']);
const PLAN_FIELDS = {
  name: { type: 'string', minLength: 1, maxLength: 100 },
  allowanceBytes: { type: ['string', 'null'], pattern: BYTES.pattern, description: 'null: unlimited' },
  resetStrategy: { type: 'string', enum: [...RESET_STRATEGIES] },
  validity: VALIDITY,
  ipLimit: { type: ['integer', 'null'], description: 'concurrent distinct client IPs; null: unlimited' },
  nodeLabels: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 64 } },
  inboundKinds: { type: 'array', maxItems: 64, items: { type: 'string', enum: [...PROFILE_KINDS] } },
  price: body({ amountMinor: { type: 'integer', minimum: 0 }, currency: { type: 'string', minLength: 3, maxLength: 3 } }, ['amountMinor', 'currency']),
  nextPlanId: { type: ['string', 'null'], pattern: PLAN_ID.pattern },
  overage: { type: 'string', enum: [...OVERAGES] },
  overagePriceMinor: { type: ['integer', 'null'], minimum: 0, description: "soft overage only: the price of each GiB above the allowance in minor units of the plan's currency, billed with the next renewal" },
} as const;
const PLAN_REQUIRED = ['name', 'price'] as const;

const PLAN = shape({
  planId: PLAN_ID,
  name: STRING,
  allowanceBytes: nullable({ ...BYTES }),
  resetStrategy: { type: 'string', enum: [...RESET_STRATEGIES] },
  validity: shape({ kind: { type: 'string', enum: [...VALIDITY_KINDS] }, days: INTEGER, timeoutDays: INTEGER }, ['days', 'timeoutDays']),
  ipLimit: nullable(INTEGER),
  nodeLabels: STRINGS,
  inboundKinds: STRINGS,
  price: shape({ amountMinor: INTEGER, currency: STRING }),
  nextPlanId: nullable(STRING),
  overage: { type: 'string', enum: [...OVERAGES] },
  overagePriceMinor: nullable(INTEGER),
  retired: BOOLEAN,
  sequence: SEQUENCE,
});

const SUBSCRIPTION_PROPERTIES = {
  planId: PLAN_ID,
  status: { type: 'string', enum: [...SUBSCRIPTION_STATUSES] },
  periodStart: nullable(TIME),
  periodEnd: nullable(TIME),
  usedBytes: BYTES,
  allowanceBytes: nullable({ ...BYTES, description: "this period's allowance plus unexpired grants left; null: unlimited" }),
  expiresAt: nullable(TIME),
  timeZone: STRING,
  ipLimit: nullable(INTEGER),
};
const SUBSCRIPTION = shape(SUBSCRIPTION_PROPERTIES);

type PlanBody = Record<string, unknown> & { planId?: string };

export function planRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { catalogue, subscriptions } = deps.plans;
  const tags = ['plans'];
  const config = { access: OPERATOR };
  const answerPlan = (reply: Parameters<typeof answerWritten>[1], seq: number, status: number, planId: string) =>
    answerWritten(deps, reply, 'plans', seq, status, async (): Promise<Record<string, unknown>> => ({ ...(await catalogue.view(planId)) }));

  app.get('/v1/plans', { config: { access: 'public' }, schema: { tags, summary: 'The plans on sale (retired ones left out), by id', response: answers({ 200: shape({ plans: listOf(PLAN) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, 'plans', request.headers[MIN_SEQUENCE_HEADER]);
    return { plans: await catalogue.list() };
  });

  app.post<{ Body: PlanBody }>(
    '/v1/admin/plans',
    { config, schema: { tags, summary: 'Create a plan', response: answers({ 201: PLAN }, [...WAITS, 409, 422]), body: body({ planId: PLAN_ID, ...PLAN_FIELDS }, ['planId', ...PLAN_REQUIRED]) } },
    async (request, reply) => {
      const { seq, planId } = await catalogue.create(request.body, actorOf(request));
      return answerPlan(reply, seq, 201, planId);
    },
  );

  app.put<{ Params: { id: string }; Body: PlanBody }>(
    '/v1/admin/plans/:id',
    {
      config,
      schema: { tags, summary: "Replace a plan's name and terms; subscribers take them at their next period", response: answers({ 200: PLAN }, [...WAITS, 404, 409, 422]), params: planParams, body: body(PLAN_FIELDS, PLAN_REQUIRED) },
    },
    async (request, reply) => {
      const { seq } = await catalogue.update(request.params.id, request.body, actorOf(request));
      return answerPlan(reply, seq, 200, request.params.id);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/admin/plans/:id',
    { config, schema: { tags, summary: 'Retire a plan: no new subscriptions; current subscribers keep it until theirs ends', response: answers({ 200: PLAN }, [...WAITS, 404, 409, 422]), params: planParams } },
    async (request, reply) => {
      const { seq } = await catalogue.retire(request.params.id, actorOf(request));
      return answerPlan(reply, seq, 200, request.params.id);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/admin/users/:id/subscription',
    { config, schema: { tags, summary: "A user's current subscription", response: answers({ 200: SUBSCRIPTION }, [...READS, 404]), params: idParams } },
    async (request) => {
      await waitForProjection(deps, 'plans', request.headers[MIN_SEQUENCE_HEADER]);
      return subscriptions.view(request.params.id);
    },
  );

  app.post<{ Params: { id: string }; Body: { planId: string; startsAt?: string; requestId?: string } }>(
    '/v1/admin/users/:id/subscription',
    {
      config,
      schema: {
        tags,
        summary: "Grant a plan to a user; it replaces the user's current subscription",
        response: answers({ 201: shape({ ...SUBSCRIPTION_PROPERTIES, sequence: SEQUENCE }) }, [...WAITS, 404, 409, 410, 422]),
        params: idParams,
        headers: { type: 'object', properties: { 'idempotency-key': { ...REQUEST_ID, description: 'the same as requestId, for clients that send keys as a header' } } },
        body: body(
          {
            planId: PLAN_ID,
            startsAt: { ...TIME, description: 'the anchor of periods and expiry; now when left out; not in the future' },
            requestId: { ...REQUEST_ID, description: 'makes a retry safe: a start repeating the current subscription\'s requestId changes nothing' },
          },
          ['planId'],
        ),
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      const input = typeof key === 'string' && request.body.requestId === undefined ? { ...request.body, requestId: key } : request.body;
      const { seq } = await subscriptions.start(request.params.id, input, actorOf(request));
      return answerWritten(deps, reply, 'plans', seq, 201, async (): Promise<Record<string, unknown>> => ({ ...(await subscriptions.view(request.params.id)) }));
    },
  );

  app.post<{ Params: { id: string }; Body: { bytes: string; expiresAt?: string | null; grantId?: string } }>(
    '/v1/admin/users/:id/grants',
    {
      config,
      schema: {
        tags,
        summary: 'Add bytes to a user\'s subscription (a top-up); the same grantId again adds nothing',
        response: answers({ 201: shape({ grantId: STRING, subscription: SUBSCRIPTION, sequence: SEQUENCE }) }, [...WAITS, 404, 409, 410, 422]),
        params: idParams,
        body: body({ bytes: BYTES, expiresAt: nullable(TIME), grantId: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'makes a retry safe; minted when left out' } }, ['bytes']),
      },
    },
    async (request, reply) => {
      const { seq, grantId } = await subscriptions.grant(request.params.id, request.body, actorOf(request));
      return answerWritten(deps, reply, 'plans', seq, 201, async (): Promise<Record<string, unknown>> => ({ grantId, subscription: await subscriptions.view(request.params.id) }));
    },
  );

  for (const change of ['disable', 'enable'] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: string } }>(
      `/v1/admin/users/:id/subscription/${change}`,
      {
        config,
        schema: {
          tags,
          summary: change === 'disable' ? "Suspend a user's subscription: they leave every node; periods and validity keep running" : 'Lift a suspension of the subscription',
          response: answers({ 200: shape({ ...SUBSCRIPTION_PROPERTIES, sequence: SEQUENCE }) }, [...WAITS, 404, 409, 410, 422]),
          params: idParams,
          body: body({ reason: { type: 'string', minLength: 1, maxLength: 200 } }, change === 'disable' ? ['reason'] : []),
        },
      },
      async (request, reply) => {
        const userId = request.params.id;
        await subscriptions.timeZoneOf(userId); // 404 user_not_found / 410 user_forgotten before anything is decided
        const { seq } = await subscriptions[change](userId, request.body.reason ?? 'enabled by an operator', actorOf(request));
        return answerWritten(deps, reply, 'plans', seq, 200, async (): Promise<Record<string, unknown>> => ({ ...(await subscriptions.view(userId)) }));
      },
    );
  }

  app.get('/v1/account/subscription', { config: { access: SIGNED_IN }, schema: { tags: ['account'], summary: 'Your subscription: plan, status, this period and its usage', response: answers({ 200: SUBSCRIPTION }, [...READS, 404]) } }, async (request) => {
    await waitForProjection(deps, 'plans', request.headers[MIN_SEQUENCE_HEADER]);
    return subscriptions.view(principalOf(request).userId);
  });

  app.put<{ Body: { timeZone: string } }>(
    '/v1/account/time-zone',
    {
      config: { access: SIGNED_IN },
      schema: {
        tags: ['account'],
        summary: 'Choose the IANA time zone your periods reset in (from your next period)',
        response: answers({ 200: shape({ timeZone: STRING, sequence: SEQUENCE }) }, [...WAITS, 410]),
        body: body({ timeZone: { type: 'string', minLength: 1, maxLength: 64 } }, ['timeZone']),
      },
    },
    async (request, reply) => {
      const { userId } = principalOf(request);
      const timeZone = checkTimeZone(request.body.timeZone);
      const { seq } = await deps.identity.deps.decideUser(userId, { type: 'ChangeTimeZone', timeZone, at: new Date() }, actorOf(request));
      return answerWritten(deps, reply, 'users', seq, 200, { timeZone });
    },
  );
}
