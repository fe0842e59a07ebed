/** `/v1/contacts` and `/v1/blocks`: the caller's own two lists; nobody reads anyone else's. */
import type { FastifyInstance } from 'fastify';
import type { DirectoryChange } from '../../messaging/directory.js';
import { actorOf, principalOf } from '../authenticate.js';
import type { ApiDeps } from '../app.js';
import { answerWritten, MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { answers, listOf, READS, shape, TIME, WAITS, WRITTEN } from '../contract.js';
import { MESSENGER, userParams } from './messaging-schemas.js';
import { UUID } from './schemas.js';

export function contactRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { directory } = deps.messaging;
  const tags = ['messaging'];
  const config = { access: MESSENGER };
  // Adding needs a live account and room in the list; removing needs neither.
  const schema = (summary: string, errors: readonly number[]) => ({ tags, summary, params: userParams, response: answers({ 200: WRITTEN }, [...WAITS, ...errors]) });

  const change = (method: 'PUT' | 'DELETE', path: string, type: DirectoryChange, summary: string, errors: readonly number[]) =>
    app.route<{ Params: { userId: string } }>({
      method,
      url: path,
      config,
      schema: schema(summary, errors),
      handler: async (request, reply) => {
        const { seq } = await directory.change(type, principalOf(request).userId, request.params.userId, actorOf(request));
        return answerWritten(deps, reply, 'contacts', seq, 200);
      },
    });
  change('PUT', '/v1/contacts/:userId', 'AddContact', 'Add someone to your contacts (they may see your presence if you share it with contacts)', [404, 409, 422]);
  change('DELETE', '/v1/contacts/:userId', 'RemoveContact', 'Remove someone from your contacts', [422]);
  change('PUT', '/v1/blocks/:userId', 'Block', 'Block someone: no messages, presence or key bundles for them', [404, 409, 422]);
  change('DELETE', '/v1/blocks/:userId', 'Unblock', 'Lift a block', [422]);

  app.get('/v1/contacts', { config, schema: { tags, summary: 'Your contacts', response: answers({ 200: shape({ contacts: listOf(shape({ userId: UUID, addedAt: TIME })) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, 'contacts', request.headers[MIN_SEQUENCE_HEADER]);
    const rows = await directory.contacts(principalOf(request).userId);
    return { contacts: rows.map((r) => ({ userId: r.contact_id, addedAt: r.added_at.toISOString() })) };
  });

  app.get('/v1/blocks', { config, schema: { tags, summary: 'Whom you blocked', response: answers({ 200: shape({ blocks: listOf(shape({ userId: UUID, blockedAt: TIME })) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, 'contacts', request.headers[MIN_SEQUENCE_HEADER]);
    const rows = await directory.blocks(principalOf(request).userId);
    return { blocks: rows.map((r) => ({ userId: r.blocked_id, blockedAt: r.blocked_at.toISOString() })) };
  });
}
