/** `/v1/groups`: group chats; only members see a group, and to anyone else it does not exist. */
import type { FastifyInstance } from 'fastify';
import { MAX_GROUP_MEMBERS } from '../../messaging/limits.js';
import { actorOf, principalOf } from '../authenticate.js';
import type { ApiDeps } from '../app.js';
import { answerWritten, MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { GROUP_NAME, memberParams, MESSENGER } from './messaging-schemas.js';
import { body, idParams, UUID } from './schemas.js';
import { answers, listOf, nullable, READS, SEQUENCE, shape, STRING, TIME, WAITS, WRITTEN } from '../contract.js';

const GROUP = shape({ groupId: UUID, name: STRING, createdBy: UUID, createdAt: TIME, members: listOf(shape({ userId: UUID, addedAt: nullable(TIME) })), sequence: SEQUENCE });

export function groupRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { groups } = deps.messaging;
  const tags = ['messaging'];
  const config = { access: MESSENGER };

  app.post<{ Body: { name: string; members: string[] } }>(
    '/v1/groups',
    {
      config,
      schema: {
        tags,
        summary: 'Create a group; you are its admin and a member', response: answers({ 201: shape({ groupId: UUID, sequence: SEQUENCE }) }, [...WAITS, 404, 409, 422]),
        body: body({ name: GROUP_NAME, members: { type: 'array', items: UUID, maxItems: MAX_GROUP_MEMBERS, uniqueItems: true } }, ['name', 'members']),
      },
    },
    async (request, reply) => {
      const { groupId, seq } = await groups.create(principalOf(request).userId, request.body.name, request.body.members, actorOf(request));
      return answerWritten(deps, reply, 'groups', seq, 201, { groupId });
    },
  );

  app.get<{ Params: { id: string } }>('/v1/groups/:id', { config, schema: { tags, summary: 'A group you are in, with its members', response: answers({ 200: GROUP }, [...READS, 404]), params: idParams } }, async (request) => {
    await waitForProjection(deps, 'groups', request.headers[MIN_SEQUENCE_HEADER]);
    const group = await groups.view(request.params.id, principalOf(request).userId);
    return {
      ...group,
      createdAt: group.createdAt.toISOString(),
      members: group.members.map((m) => ({ userId: m.userId, addedAt: m.addedAt?.toISOString() ?? null })),
    };
  });

  app.put<{ Params: { id: string; userId: string } }>('/v1/groups/:id/members/:userId', { config, schema: { tags, summary: 'Add someone to a group you are in', response: answers({ 200: WRITTEN }, [...WAITS, 403, 404, 409, 422]), params: memberParams } }, async (request, reply) => {
    const { seq } = await groups.addMember(request.params.id, principalOf(request).userId, request.params.userId, actorOf(request));
    return answerWritten(deps, reply, 'groups', seq, 200);
  });

  app.delete<{ Params: { id: string; userId: string } }>(
    '/v1/groups/:id/members/:userId',
    { config, schema: { tags, summary: 'Leave a group (your own id), or remove a member as its admin', response: answers({ 200: WRITTEN }, [...WAITS, 403, 404, 422]), params: memberParams } },
    async (request, reply) => {
      const { seq } = await groups.removeMember(request.params.id, principalOf(request).userId, request.params.userId, actorOf(request));
      return answerWritten(deps, reply, 'groups', seq, 200);
    },
  );
}
