/**
 * `/v1/analytics/*` (docs/analytics.md): usage trends, cost analysis, the
 * operators' KPIs and exports. A client reads their own; analysts, operators
 * and admins any user's (`userId`) or the fleet's (`fleet=true`). Times of
 * days and weeks are in the caller's zone (the plans context keeps it on the
 * user). Bytes are decimal strings, money integer minor units per currency.
 */
import { createReadStream } from 'node:fs';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../../identity/authentication.js';
import type { TrendGranularity } from '../../analytics/buckets.js';
import { fleetCost, userCost } from '../../analytics/cost.js';
import { DATASETS, EXPORT_FORMATS, type Dataset, type ExportFormat } from '../../analytics/datasets.js';
import { CONTENT_TYPES } from '../../analytics/export-sinks.js';
import { kpis } from '../../analytics/kpis.js';
import { timeZoneOf, usageTrends, type TrendGroup, type TrendScope } from '../../analytics/trends.js';
import { usageRange } from '../../usage/usage-queries.js';
import type { ApiDeps } from '../app.js';
import { mayCall, principalOf, SIGNED_IN } from '../authenticate.js';
import { answers, BOOLEAN, INTEGER, listOf, nullable, READS, shape, STRING, TIME } from '../contract.js';
import { HttpError } from '../errors.js';
import { MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { CURRENCY, MINOR } from './billing-schemas.js';
import { UUID } from './schemas.js';
import { BYTES, RANGE_QUERY } from './usage.js';

const FLEET_READERS = ['operator', 'analyst'] as const;
const DAY_MS = 86_400_000;
const TRAFFIC = { uplink: BYTES, downlink: BYTES, total: BYTES };
const RATIO = { ...nullable({ type: 'number' }), description: 'a share between 0 and 1; null when nothing to divide by' };
const ZONE = { type: 'string', description: 'the IANA zone days and weeks are counted in' } as const;

const isFleetReader = (principal: Principal) => mayCall(principal, FLEET_READERS);

/** Whose figures: the caller's, one user's or the fleet's (the last two for analysts and operators). */
function trendScope(principal: Principal, userId: string | undefined, fleet: boolean | undefined): TrendScope {
  if (fleet) {
    if (userId !== undefined) throw new HttpError(400, 'invalid_querystring', 'fleet: give userId or fleet, not both', 'fleet');
    if (!isFleetReader(principal)) throw new HttpError(403, 'forbidden', "fleet: the fleet's figures are for analysts and operators");
    return { fleet: true };
  }
  if (userId === undefined || userId === principal.userId) return { userId: principal.userId };
  if (!isFleetReader(principal)) throw new HttpError(403, 'forbidden', "userId: another user's figures are for analysts and operators");
  return { userId };
}

function requireFleetReader(request: FastifyRequest): void {
  if (!isFleetReader(principalOf(request))) throw new HttpError(403, 'forbidden', 'the fleet’s figures are for analysts and operators');
}

export function analyticsRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const tags = ['analytics'];
  const config = { access: SIGNED_IN };
  const waitUsage = (request: FastifyRequest) => waitForProjection(deps, 'analytics-usage', request.headers[MIN_SEQUENCE_HEADER]);

  app.get<{ Querystring: { from?: string; to?: string; granularity?: TrendGranularity; groupBy?: TrendGroup; userId?: string; fleet?: boolean } }>(
    '/v1/analytics/usage-trends',
    {
      config,
      schema: {
        tags,
        summary: 'Bytes per hour, local day or local week over [from, to) (default: the last 7 days, at most 93), optionally by node, country, protocol or plan; yours, a user’s or the fleet’s for analysts and operators',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...RANGE_QUERY,
            granularity: { type: 'string', enum: ['hour', 'day', 'week'], default: 'day' },
            groupBy: { type: 'string', enum: ['node', 'country', 'protocol', 'plan'] },
            userId: UUID,
            fleet: BOOLEAN,
          },
        },
        response: answers(
          {
            200: shape(
              {
                granularity: STRING,
                groupBy: nullable(STRING),
                timeZone: ZONE,
                from: TIME,
                to: TIME,
                userId: nullable(STRING),
                buckets: listOf(shape({ start: TIME, end: TIME, ...TRAFFIC, groups: listOf(shape({ key: STRING, ...TRAFFIC })) }, ['groups'])),
              },
            ),
          },
          READS,
        ),
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { from, to, granularity = 'day', groupBy, userId, fleet } = request.query;
      const scope = trendScope(principal, userId, fleet);
      await waitUsage(request);
      const range = usageRange(from, to, new Date(), { defaultMs: 7 * DAY_MS });
      const timeZone = await timeZoneOf(deps.db, principal.userId);
      const buckets = await usageTrends(deps.db, scope, range, granularity, timeZone, groupBy);
      return { granularity, groupBy: groupBy ?? null, timeZone, from: range.from.toISOString(), to: range.to.toISOString(), userId: 'userId' in scope ? scope.userId : null, buckets };
    },
  );

  const PERIOD = shape({ periodStart: TIME, periodEnd: TIME, currency: CURRENCY, invoices: INTEGER, totalMinor: MINOR, creditedMinor: MINOR, netMinor: MINOR });
  const USER_COST = shape({
    userId: UUID,
    timeZone: ZONE,
    from: TIME,
    to: TIME,
    usedBytes: BYTES,
    periods: listOf(PERIOD),
    costPerGiB: listOf(shape({ currency: CURRENCY, netMinor: MINOR, perGiBMinor: nullable(INTEGER) })),
    projection: shape({ monthStart: TIME, monthEnd: TIME, usedBytes: BYTES, projectedBytes: BYTES, costs: listOf(shape({ currency: CURRENCY, projectedMinor: nullable(INTEGER) })) }),
  });
  const FLEET_COST = shape({
    from: TIME,
    to: TIME,
    revenue: listOf(shape({ planId: STRING, currency: CURRENCY, orders: INTEGER, grossMinor: MINOR, refundedMinor: MINOR, netMinor: MINOR, payingUsers: INTEGER, arpuMinor: nullable(INTEGER) })),
    mrr: listOf(shape({ planId: STRING, currency: CURRENCY, subscriptions: INTEGER, mrrMinor: MINOR })),
    churn: listOf(shape({ planId: STRING, runningAtStart: INTEGER, churned: INTEGER, rate: RATIO })),
  });

  app.get<{ Querystring: { from?: string; to?: string; userId?: string; fleet?: boolean } }>(
    '/v1/analytics/cost-analysis',
    {
      config,
      schema: {
        tags,
        summary: 'Spend per invoice period, cost per GiB and this month projected (yours, or a user’s); or, with fleet=true, revenue, MRR, churn and ARPU per plan. Default range: the last 365 days, at most 731',
        querystring: { type: 'object', additionalProperties: false, properties: { ...RANGE_QUERY, userId: UUID, fleet: BOOLEAN } },
        response: answers({ 200: { oneOf: [USER_COST, FLEET_COST] } }, READS),
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { from, to, userId, fleet } = request.query;
      const scope = trendScope(principal, userId, fleet);
      await waitUsage(request);
      const range = usageRange(from, to, new Date(), { defaultMs: 365 * DAY_MS, maxDays: 731 });
      if ('fleet' in scope) return fleetCost(deps.db, deps.billing.queries, range);
      return userCost(deps.db, scope.userId, range, await timeZoneOf(deps.db, scope.userId));
    },
  );

  const RANKED = listOf(shape({ key: STRING, ...TRAFFIC }));
  app.get<{ Querystring: { from?: string; to?: string } }>(
    '/v1/analytics/kpis',
    {
      config,
      schema: {
        tags,
        summary: 'Active users now (15 min), in 24 h and 30 days; new and churned subscriptions, top nodes and countries by bytes and the rollout success rate over [from, to) (default: the last 30 days, at most 93); for analysts and operators',
        querystring: { type: 'object', additionalProperties: false, properties: RANGE_QUERY },
        response: answers(
          {
            200: shape({
              from: TIME,
              to: TIME,
              activeUsers: shape({ now: INTEGER, day: INTEGER, month: INTEGER }),
              subscriptions: shape({ started: INTEGER, churned: INTEGER }),
              topNodes: RANKED,
              topCountries: RANKED,
              rollouts: shape({ finished: INTEGER, completed: INTEGER, successRate: RATIO }),
            }),
          },
          READS,
        ),
      },
    },
    async (request) => {
      requireFleetReader(request);
      await waitUsage(request);
      return kpis(deps.db, usageRange(request.query.from, request.query.to, new Date(), { defaultMs: 30 * DAY_MS }));
    },
  );

  const EXPORT = shape({
    id: UUID,
    dataset: { type: 'string', enum: [...DATASETS] },
    format: { type: 'string', enum: [...EXPORT_FORMATS] },
    from: TIME,
    to: TIME,
    userId: { ...nullable(STRING), description: 'whose rows; null: the fleet’s' },
    personal: { ...BOOLEAN, description: 'personal columns included (your own rows only)' },
    status: { type: 'string', enum: ['queued', 'running', 'done', 'failed'] },
    rowsDone: INTEGER,
    rowsTotal: nullable(INTEGER),
    progress: { type: 'number', minimum: 0, maximum: 1 },
    bytes: nullable(INTEGER),
    error: nullable(STRING),
    createdAt: TIME,
    finishedAt: { ...nullable(STRING), format: 'date-time' },
    download: { ...nullable({ type: 'object' }), additionalProperties: false, required: ['url', 'expiresAt'], properties: { url: STRING, expiresAt: TIME }, description: 'once done: a signed link that works without a token until expiresAt' },
  });

  app.post<{ Body: { dataset: Dataset; format: ExportFormat; from: string; to: string; userId?: string } }>(
    '/v1/analytics/exports',
    {
      config,
      schema: {
        tags,
        summary: 'Starts an export of your rows (or, for analysts and operators, the fleet’s or a user’s) in [from, to) as CSV, NDJSON or an Avro container file',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['dataset', 'format', 'from', 'to'],
          properties: { dataset: { type: 'string', enum: [...DATASETS] }, format: { type: 'string', enum: [...EXPORT_FORMATS] }, from: TIME, to: TIME, userId: UUID },
        },
        response: answers({ 202: EXPORT }, [403, 422]),
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const job = await deps.exports.create(principal.userId, isFleetReader(principal), request.body);
      return reply.status(202).send(job);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/analytics/exports/:id',
    {
      config,
      schema: { tags, summary: 'An export you started: its progress, and once done a download link', params: { type: 'object', required: ['id'], properties: { id: UUID } }, response: answers({ 200: EXPORT }, [404]) },
    },
    async (request) => deps.exports.get(principalOf(request).userId, request.params.id),
  );

  app.get<{ Params: { id: string }; Querystring: { expires: number; signature: string } }>(
    '/v1/analytics/exports/:id/download',
    {
      config: { access: 'public' },
      schema: {
        tags,
        summary: 'The export’s file, through the signed link its job gave (no token needed; the link expires)',
        security: [],
        params: { type: 'object', required: ['id'], properties: { id: UUID } },
        querystring: { type: 'object', additionalProperties: false, required: ['expires', 'signature'], properties: { expires: { type: 'integer', minimum: 0 }, signature: { type: 'string', pattern: '^[A-Za-z0-9_-]{43}$' } } },
        response: answers({ 200: { content: Object.fromEntries(Object.values(CONTENT_TYPES).map((type) => [type.split(';')[0], { schema: { type: 'string', format: 'binary' } }])) } }, [403, 404, 410]),
      },
    },
    async (request, reply) => {
      const file = await deps.exports.download(request.params.id, request.query.expires, request.query.signature);
      return reply
        .header('content-type', CONTENT_TYPES[file.format])
        .header('content-disposition', `attachment; filename="${file.dataset}-${request.params.id}.${file.format}"`)
        .header('cache-control', 'private, no-store')
        .send(createReadStream(file.path));
    },
  );
}
