/**
 * `GET /v1/account/connections`: the caller's connection history (node,
 * inbound, times, bytes, client IP), or any user's for operators
 * (`?userId=`). The client IP is opened for its owner only: an operator sees
 * when and where, not from where.
 */
import type { FastifyInstance } from 'fastify';
import { connectionHistory, DEFAULT_HISTORY_LIMIT, MAX_HISTORY_LIMIT } from '../../usage/connection-history.js';
import { usageRange } from '../../usage/usage-queries.js';
import type { ApiDeps } from '../app.js';
import { principalOf, SIGNED_IN } from '../authenticate.js';
import { answers, INTEGER, listOf, nullable, READS, shape, STRING, TIME } from '../contract.js';
import { MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { NODE_ID } from './fleet-nodes.js';
import { UUID } from './schemas.js';
import { BYTES, RANGE_QUERY, userScope } from './usage.js';

const CONNECTION = shape({
  connectionId: UUID,
  nodeId: NODE_ID,
  inboundTag: nullable(STRING),
  port: nullable(INTEGER),
  clientIp: { ...nullable(STRING), description: 'yours only; null for an operator reading someone else’s, or once the user was forgotten' },
  openedAt: TIME,
  closedAt: { ...nullable(STRING), format: 'date-time', description: 'null while open' },
  uplink: BYTES,
  downlink: BYTES,
});

export function connectionRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Querystring: { from?: string; to?: string; limit?: number; cursor?: string; userId?: string } }>(
    '/v1/account/connections',
    {
      config: { access: SIGNED_IN },
      schema: {
        tags: ['usage'],
        summary: 'Connections opened in [from, to) (default: the last 24 h, at most 93 days), newest first, in pages; yours, or a user’s for operators',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ...RANGE_QUERY,
            limit: { type: 'integer', minimum: 1, maximum: MAX_HISTORY_LIMIT, default: DEFAULT_HISTORY_LIMIT },
            cursor: { type: 'string', minLength: 1, maxLength: 200 },
            userId: UUID,
          },
        },
        response: answers({ 200: shape({ userId: UUID, from: TIME, to: TIME, connections: listOf(CONNECTION), nextCursor: nullable(STRING) }) }, READS),
      },
    },
    async (request) => {
      const principal = principalOf(request);
      const { from, to, limit = DEFAULT_HISTORY_LIMIT, cursor, userId: asked } = request.query;
      const userId = userScope(principal, asked, 'connection history');
      const range = usageRange(from, to);
      await waitForProjection(deps, 'connections', request.headers[MIN_SEQUENCE_HEADER]);
      const page = await connectionHistory(deps.db, deps.identity.deps.keys, userId, { ...range, limit, cursor, openIps: userId === principal.userId });
      return { userId, from: range.from.toISOString(), to: range.to.toISOString(), ...page };
    },
  );
}
