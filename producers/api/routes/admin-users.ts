/** `/v1/admin/users`: list, search, create, suspend, reinstate, roles. */
import type { FastifyInstance } from 'fastify';
import type { Role } from '../../identity/roles.js';
import { actorOf } from '../authenticate.js';
import type { ApiDeps } from '../app.js';
import { HttpError } from '../errors.js';
import { MIN_SEQUENCE_HEADER, SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { body, EMAIL, idParams, PASSWORD, ROLE, UUID } from './schemas.js';
import { API_KEY, apiKeyView, SESSION, sessionView, USER, USER_PROPERTIES, userView } from './views.js';
import { answers, listOf, nullable, READS, SEQUENCE, shape, STRING, WRITTEN } from '../contract.js';
import { listUsers, USER_STATUSES } from '../../../projectors/identity/users.queries.js';
import type { UserStatus } from '../../../schema/database.js';

const STAFF: readonly Role[] = ['admin', 'operator'];
const ADMIN: readonly Role[] = ['admin'];
const CREATED = shape({ id: UUID, sequence: SEQUENCE });

export function adminUserRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { identity, db } = deps;
  const tags = ['admin'];

  app.get<{ Querystring: { q?: string; status?: UserStatus; limit?: number; after?: string } }>(
    '/v1/admin/users',
    {
      config: { access: STAFF },
      schema: {
        tags,
        summary: 'List users; q matches the start of an email, status filters; page with after=<last id>', response: answers({ 200: shape({ users: listOf(USER), next: nullable(STRING) }) }, READS),
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            q: { type: 'string', minLength: 1, maxLength: 254 },
            status: { type: 'string', enum: [...USER_STATUSES] },
            limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
            after: UUID,
          },
        },
      },
    },
    async (request) => {
      await waitForProjection(deps, 'users', request.headers[MIN_SEQUENCE_HEADER]);
      const { q, status, limit = 50, after } = request.query;
      const rows = await listUsers(db, { q, status, limit, after });
      return { users: rows.map(userView), next: rows.length === limit ? (rows.at(-1)?.id ?? null) : null };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/v1/admin/users/:id',
    { config: { access: STAFF }, schema: { tags, summary: 'One user, with their sessions and API keys', response: answers({ 200: shape({ ...USER_PROPERTIES, sessions: listOf(SESSION), apiKeys: listOf(API_KEY) }) }, [...READS, 404]), params: idParams } },
    async (request) => {
      await waitForProjection(deps, 'users', request.headers[MIN_SEQUENCE_HEADER]);
      const user = await db.selectFrom('users').selectAll().where('id', '=', request.params.id).executeTakeFirst();
      if (!user) throw new HttpError(404, 'user_not_found', `no user ${request.params.id}`);
      const [sessions, apiKeys] = await Promise.all([
        identity.deps.sessions.list(user.id),
        db.selectFrom('api_keys').select(['id', 'name', 'roles', 'issued_at', 'revoked_at']).where('user_id', '=', user.id).execute(),
      ]);
      return {
        ...userView(user),
        sessions: sessions.map(sessionView),
        apiKeys: apiKeys.map((k) => apiKeyView(k)),
      };
    },
  );

  app.post<{ Body: { email: string; password: string; displayName?: string; roles?: Role[] } }>(
    '/v1/admin/users',
    {
      config: { access: ADMIN },
      schema: {
        tags,
        summary: 'Create a user with roles', response: answers({ 201: CREATED }, [409, 422]),
        body: body({ email: EMAIL, password: PASSWORD, displayName: { type: 'string', minLength: 1, maxLength: 100 }, roles: { type: 'array', items: ROLE, uniqueItems: true } }, ['email', 'password']),
      },
    },
    async (request, reply) => {
      const user = await identity.accounts.register(request.body, actorOf(request));
      return reply.status(201).header(SEQUENCE_HEADER, String(user.seq)).send({ id: user.userId, sequence: user.seq });
    },
  );

  app.post<{ Params: { id: string }; Body: { reason: string } }>(
    '/v1/admin/users/:id/suspend',
    { config: { access: STAFF }, schema: { tags, summary: 'Suspend: sessions end, proxy access is revoked', response: answers({ 200: WRITTEN }, [404, 409, 410, 422]), params: idParams, body: body({ reason: { type: 'string', minLength: 1, maxLength: 500 } }, ['reason']) } },
    async (request) => ({ sequence: await identity.admin.suspend(request.params.id, request.body.reason, actorOf(request)) }),
  );

  app.post<{ Params: { id: string } }>('/v1/admin/users/:id/reinstate', { config: { access: STAFF }, schema: { tags, summary: 'Reinstate a suspended user', response: answers({ 200: WRITTEN }, [404, 409, 410, 422]), params: idParams } }, async (request) => ({
    sequence: await identity.admin.reinstate(request.params.id, actorOf(request)),
  }));

  const roleParams = { type: 'object', required: ['id', 'role'], properties: { id: UUID, role: ROLE } } as const;
  app.put<{ Params: { id: string; role: Role } }>('/v1/admin/users/:id/roles/:role', { config: { access: ADMIN }, schema: { tags, summary: 'Grant a role', response: answers({ 200: WRITTEN }, [404, 409, 410, 422]), params: roleParams } }, async (request) => ({
    sequence: await identity.admin.grantRole(request.params.id, request.params.role, actorOf(request)),
  }));

  app.delete<{ Params: { id: string; role: Role } }>('/v1/admin/users/:id/roles/:role', { config: { access: ADMIN }, schema: { tags, summary: 'Revoke a role', response: answers({ 200: WRITTEN }, [404, 409, 410, 422]), params: roleParams } }, async (request) => ({
    sequence: await identity.admin.revokeRole(request.params.id, request.params.role, actorOf(request)),
  }));

}
