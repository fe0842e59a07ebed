/** The thin slice: register a user, read it back from the read model. */
import type { FastifyInstance } from 'fastify';
import { contextFromTraceparent, inSpan, traceparentOf } from '../../../infra/tracing.js';
import { registerUser } from '../../identity/register-user.js';
import { HttpError } from '../errors.js';
import type { ApiDeps } from '../app.js';
import { MIN_SEQUENCE_HEADER, SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';

interface RegisterBody {
  email: string;
  displayName?: string;
}

const registerSchema = {
  body: {
    type: 'object',
    required: ['email'],
    additionalProperties: false,
    properties: {
      email: { type: 'string', format: 'email', maxLength: 254 },
      displayName: { type: 'string', minLength: 1, maxLength: 100 },
    },
  },
} as const;

const userIdParams = {
  params: {
    type: 'object',
    required: ['id'],
    properties: { id: { type: 'string', pattern: '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$' } },
  },
} as const;

export function userRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.post<{ Body: RegisterBody }>('/v1/users', { schema: registerSchema }, async (request, reply) => {
    const traceparent = request.headers.traceparent;
    const parent = contextFromTraceparent(Array.isArray(traceparent) ? traceparent[0] : traceparent);
    const user = await inSpan('POST /v1/users', parent, (_span, ctx) =>
      registerUser(
        deps.handler,
        { email: request.body.email, displayName: request.body.displayName ?? null },
        { source: 'relaygrid/api', correlationId: request.id, traceparent: traceparentOf(ctx) },
      ),
    );
    return reply.status(201).header(SEQUENCE_HEADER, String(user.seq)).send({ id: user.userId, sequence: user.seq });
  });

  app.get<{ Params: { id: string } }>('/v1/users/:id', { schema: userIdParams }, async (request, reply) => {
    await waitForProjection(deps, 'users', request.headers[MIN_SEQUENCE_HEADER]);
    const user = await deps.db
      .selectFrom('users')
      .select(['id', 'email', 'display_name', 'status', 'registered_at', 'last_seq'])
      .where('id', '=', request.params.id)
      .executeTakeFirst();
    if (!user) throw new HttpError(404, 'user_not_found', `no user ${request.params.id}`);
    return reply.header(SEQUENCE_HEADER, String(user.last_seq)).send({
      id: user.id,
      email: user.email,
      displayName: user.display_name,
      status: user.status,
      registeredAt: user.registered_at.toISOString(),
      sequence: user.last_seq,
    });
  });
}
