/**
 * `/v1/usage/*`: traffic by hour or day, and per calendar month. Anyone signed
 * in sees their own; another user's usage and any node's are for operators.
 * Byte counts are decimal strings: 64-bit counters do not fit a JSON number
 * every client parses exactly.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Principal } from '../../identity/authentication.js';
import { monthlyUsage, monthOf, usageBuckets, usageRange, type Granularity, type UsageScope } from '../../usage/usage-queries.js';
import type { ApiDeps } from '../app.js';
import { mayCall, principalOf, SIGNED_IN } from '../authenticate.js';
import { HttpError } from '../errors.js';
import { MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { NODE_ID } from './fleet-nodes.js';
import { UUID } from './schemas.js';
import { answers, READS, shape, STRING, TIME } from '../contract.js';

/** `from` and `to` of a range query (producers/usage/usage-queries.ts usageRange). */
export const RANGE_QUERY = { from: { type: 'string', format: 'date-time' }, to: { type: 'string', format: 'date-time' } } as const;
export const BYTES = { type: 'string', pattern: '^[0-9]+$', description: 'bytes, as a decimal string' } as const;
const MONTH = { type: 'string', pattern: '^[0-9]{4}-(0[1-9]|1[0-2])$' } as const;

/** Admins pass every role check, here as at the door. */
const isOperator = (principal: Principal) => mayCall(principal, ['operator']);

/** The user whose usage is asked for: the caller's own, or anyone's for an operator. */
export function userScope(principal: Principal, userId: string | undefined, what = 'usage'): string {
  if (userId === undefined || userId === principal.userId) return principal.userId;
  if (!isOperator(principal)) throw new HttpError(403, 'forbidden', `userId: another user's ${what} is for operators`);
  return userId;
}

async function readUsage<T>(deps: ApiDeps, request: FastifyRequest, query: () => Promise<T>): Promise<T> {
  await waitForProjection(deps, 'usage', request.headers[MIN_SEQUENCE_HEADER]);
  return query();
}

export function usageRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const tags = ['usage'];
  const config = { access: SIGNED_IN };

  app.get<{ Querystring: { from?: string; to?: string; granularity?: Granularity; userId?: string; nodeId?: string } }>(
    '/v1/usage/stats',
    {
      config,
      schema: {
        tags,
        summary: 'Uplink and downlink per hour or UTC day over [from, to) (default: the last 24 h, at most 93 days); yours, or a user or node for operators',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...RANGE_QUERY,
            granularity: { type: 'string', enum: ['hour', 'day'], default: 'hour' },
            userId: UUID,
            nodeId: NODE_ID,
          },
        },
        response: answers(
          {
            // One of userId and nodeId: the scope asked for.
            200: shape(
              { granularity: { type: 'string', enum: ['hour', 'day'] }, from: TIME, to: TIME, userId: UUID, nodeId: NODE_ID, buckets: { type: 'array', items: shape({ start: TIME, uplink: BYTES, downlink: BYTES }) } },
              ['userId', 'nodeId'],
            ),
          },
          READS,
        ),
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { from, to, granularity = 'hour', userId, nodeId } = request.query;
      if (userId !== undefined && nodeId !== undefined) throw new HttpError(400, 'invalid_querystring', 'nodeId: give userId or nodeId, not both', 'nodeId');
      let scope: UsageScope;
      if (nodeId !== undefined) {
        if (!isOperator(principal)) throw new HttpError(403, 'forbidden', "nodeId: a node's usage is for operators");
        scope = { nodeId };
      } else scope = { userId: userScope(principal, userId) };
      return readUsage(deps, request, async () => {
        const range = usageRange(from, to);
        const buckets = await usageBuckets(deps.db, scope, range, granularity);
        return { granularity, from: range.from.toISOString(), to: range.to.toISOString(), ...scope, buckets };
      });
    },
  );

  app.get<{ Querystring: { month?: string; userId?: string } }>(
    '/v1/usage/monthly',
    {
      config,
      schema: {
        tags,
        summary: 'Uplink, downlink and their total in one UTC calendar month (default: this one); yours, or any user for operators',
        querystring: { type: 'object', additionalProperties: false, properties: { month: MONTH, userId: UUID } },
        response: answers({ 200: shape({ userId: UUID, month: { ...MONTH, ...STRING }, uplink: BYTES, downlink: BYTES, total: BYTES }) }, READS),
      },
    },
    async (request) => {
      const userId = userScope(principalOf(request), request.query.userId);
      return readUsage(deps, request, async () => ({ userId, ...(await monthlyUsage(deps.db, userId, request.query.month ?? monthOf(new Date()))) }));
    },
  );
}
