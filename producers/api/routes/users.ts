/** `GET /v1/users/:id`: a user as the read model has it, for the user themselves and for staff. */
import type { FastifyInstance } from 'fastify';
import { principalOf, SIGNED_IN } from '../authenticate.js';
import type { ApiDeps } from '../app.js';
import { HttpError } from '../errors.js';
import { MIN_SEQUENCE_HEADER, SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { idParams } from './schemas.js';
import { USER, userView } from './views.js';
import { answers, READS } from '../contract.js';

export function userRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get<{ Params: { id: string } }>(
    '/v1/users/:id',
    { config: { access: SIGNED_IN }, schema: { tags: ['users'], summary: 'A user: yourself, or anyone for admins and operators', response: answers({ 200: USER }, [...READS, 404]), params: idParams } },
    async (request, reply) => {
      const principal = principalOf(request);
      const staff = principal.roles.includes('admin') || principal.roles.includes('operator');
      // Someone else's id answers exactly like an unknown one.
      if (!staff && principal.userId !== request.params.id) throw new HttpError(404, 'user_not_found', `no user ${request.params.id}`);
      await waitForProjection(deps, 'users', request.headers[MIN_SEQUENCE_HEADER]);
      const user = await deps.db.selectFrom('users').selectAll().where('id', '=', request.params.id).executeTakeFirst();
      if (!user) throw new HttpError(404, 'user_not_found', `no user ${request.params.id}`);
      return reply.header(SEQUENCE_HEADER, String(user.last_seq)).send(userView(user));
    },
  );
}
