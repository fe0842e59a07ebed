/** `/v1/contacts` and `/v1/blocks`: the caller's own two lists; nobody reads anyone else's. */
import type { FastifyInstance } from 'fastify';
import type { DirectoryChange } from '../../messaging/directory.js';
import { actorOf, principalOf } from '../authenticate.js';
import type { ApiDeps } from '../app.js';
import { answerWritten, MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { MESSENGER, userParams } from './messaging-schemas.js';

export function contactRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { directory } = deps.messaging;
  const tags = ['messaging'];
  const config = { access: MESSENGER };
  const schema = (summary: string) => ({ tags, summary, params: userParams });

  const change = (method: 'PUT' | 'DELETE', path: string, type: DirectoryChange, summary: string) =>
    app.route<{ Params: { userId: string } }>({
      method,
      url: path,
      config,
      schema: schema(summary),
      handler: async (request, reply) => {
        const { seq } = await directory.change(type, principalOf(request).userId, request.params.userId, actorOf(request));
        return answerWritten(deps, reply, 'contacts', seq, 200);
      },
    });
  change('PUT', '/v1/contacts/:userId', 'AddContact', 'Add someone to your contacts (they may see your presence if you share it with contacts)');
  change('DELETE', '/v1/contacts/:userId', 'RemoveContact', 'Remove someone from your contacts');
  change('PUT', '/v1/blocks/:userId', 'Block', 'Block someone: no messages, presence or key bundles for them');
  change('DELETE', '/v1/blocks/:userId', 'Unblock', 'Lift a block');

  app.get('/v1/contacts', { config, schema: { tags, summary: 'Your contacts' } }, async (request) => {
    await waitForProjection(deps, 'contacts', request.headers[MIN_SEQUENCE_HEADER]);
    const rows = await directory.contacts(principalOf(request).userId);
    return { contacts: rows.map((r) => ({ userId: r.contact_id, addedAt: r.added_at.toISOString() })) };
  });

  app.get('/v1/blocks', { config, schema: { tags, summary: 'Whom you blocked' } }, async (request) => {
    await waitForProjection(deps, 'contacts', request.headers[MIN_SEQUENCE_HEADER]);
    const rows = await directory.blocks(principalOf(request).userId);
    return { blocks: rows.map((r) => ({ userId: r.blocked_id, blockedAt: r.blocked_at.toISOString() })) };
  });
}
