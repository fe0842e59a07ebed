/**
 * `/v1/sites`: edge sites (docs/edge.md#sites). A client manages its own
 * sites; admins and operators every site. Someone else's site answers 404
 * like an unknown id, so ids tell a client nothing.
 *
 * The body schema only says "an object": the site's rules are
 * site-validation.ts's, whose 400 `invalid_site` names the field, so every
 * refusal of a site has the one code and the one message style.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TLS_MODES, WAF_LEVELS } from '../../edge/model.js';
import type { Requester } from '../../edge/sites.js';
import type { Role } from '../../identity/roles.js';
import type { ApiDeps } from '../app.js';
import { actorOf, mayCall, principalOf } from '../authenticate.js';
import { answers, BOOLEAN, INTEGER, listOf, nullable, READS, SEQUENCE, shape, STRING, STRINGS, TIME, WAITS } from '../contract.js';
import { answerWritten, MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { EDGE_SITES_PROJECTOR } from '../../../projectors/edge/sites.projection.js';
import { idParams, UUID } from './schemas.js';

const SITE_USERS: readonly Role[] = ['client', 'operator'];
/** Who sees and changes every site, not only their own. */
const ALL_SITES: readonly Role[] = ['operator'];

const SITE_PROPERTIES = {
  id: UUID,
  ownerId: UUID,
  domain: { type: 'string', description: 'lower-case punycode; a leading "*." for a wildcard' },
  aliases: STRINGS,
  upstreams: listOf(shape({ host: { type: 'string', description: 'hostname (punycode) or IP literal' }, port: INTEGER, weight: INTEGER })),
  tls: shape({ mode: { type: 'string', enum: [...TLS_MODES] } }),
  waf: shape({ level: { type: 'string', enum: [...WAF_LEVELS] } }),
  cache: shape({ enabled: BOOLEAN, ttlSeconds: INTEGER, bypass: STRINGS }),
  access: shape({ allow: STRINGS, deny: STRINGS, blockedCountries: STRINGS }),
  rateLimit: nullable({ ...shape({ requestsPerSecond: INTEGER, burst: INTEGER }), type: 'object' }),
  headers: { type: 'object', additionalProperties: STRING, description: 'response header name → value, in order' },
  nodeLabels: STRINGS,
  blocked: BOOLEAN,
  version: { type: 'integer', description: 'bumped by every change: what a node reports as applied' },
  createdAt: TIME,
  updatedAt: TIME,
};
const SITE = shape(SITE_PROPERTIES);
const WRITTEN_SITE = shape({ ...SITE_PROPERTIES, sequence: SEQUENCE });
const DEPLOYMENT = shape({
  nodeId: STRING,
  appliedVersion: nullable({ ...INTEGER, description: 'the site version the node serves; null when it never applied one' }),
  status: { type: 'string', description: 'applied, rejected or pending' },
  error: nullable({ ...STRING, description: "the edge's own error text for a rejected version" }),
  updatedAt: TIME,
});
const SITE_BODY = { type: 'object', description: 'a site: see docs/edge.md#sites; checked by the sites context, whose 400 invalid_site names the field' } as const;

function requesterOf(request: FastifyRequest): Requester {
  const principal = principalOf(request);
  return { userId: principal.userId, all: mayCall(principal, ALL_SITES) };
}

export function siteRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { sites } = deps;
  const tags = ['edge'];
  const config = { access: SITE_USERS };
  const answerSite = (request: FastifyRequest, reply: FastifyReply, seq: number, status: number, id: string) =>
    answerWritten(deps, reply, EDGE_SITES_PROJECTOR, seq, status, async (): Promise<Record<string, unknown>> => ({ ...(await sites.view(id, requesterOf(request))) }));
  type ById = { Params: { id: string } };

  app.post<{ Body: unknown }>(
    '/v1/sites',
    { config, schema: { tags, summary: 'Create a site; its domain and aliases are reserved for it (409 domain_taken when another site holds one)', response: answers({ 201: WRITTEN_SITE }, [...WAITS, 409]), body: SITE_BODY } },
    async (request, reply) => {
      const { seq, id } = await sites.create(request.body, requesterOf(request), actorOf(request));
      return answerSite(request, reply, seq, 201, id);
    },
  );

  app.get('/v1/sites', { config, schema: { tags, summary: 'Your sites (admins and operators: every site), oldest first', response: answers({ 200: shape({ sites: listOf(SITE) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, EDGE_SITES_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
    return { sites: await sites.list(requesterOf(request)) };
  });

  app.get<ById>('/v1/sites/:id', { config, schema: { tags, summary: 'One site', response: answers({ 200: SITE }, [...READS, 404]), params: idParams } }, async (request) => {
    await waitForProjection(deps, EDGE_SITES_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
    return sites.view(request.params.id, requesterOf(request));
  });

  app.put<ById & { Body: unknown }>(
    '/v1/sites/:id',
    { config, schema: { tags, summary: "Replace a site's settings whole; names it no longer uses are released", response: answers({ 200: WRITTEN_SITE }, [...WAITS, 404, 409]), params: idParams, body: SITE_BODY } },
    async (request, reply) => {
      const { seq } = await sites.update(request.params.id, request.body, requesterOf(request), actorOf(request));
      return answerSite(request, reply, seq, 200, request.params.id);
    },
  );

  app.delete<ById>(
    '/v1/sites/:id',
    { config, schema: { tags, summary: 'Delete a site; its names are free for any site again', response: answers({ 200: shape({ sequence: SEQUENCE }) }, [...WAITS, 404]), params: idParams } },
    async (request, reply) => {
      const { seq } = await sites.delete(request.params.id, requesterOf(request), actorOf(request));
      return answerWritten(deps, reply, EDGE_SITES_PROJECTOR, seq, 200);
    },
  );

  for (const action of ['block', 'unblock'] as const) {
    app.post<ById>(
      `/v1/sites/:id/${action}`,
      {
        config,
        schema: {
          tags,
          summary: action === 'block' ? 'Block a site: it answers a fixed page and never reaches its upstreams' : 'Unblock a site: it serves its upstreams again',
          response: answers({ 200: WRITTEN_SITE }, [...WAITS, 404]),
          params: idParams,
        },
      },
      async (request, reply) => {
        const { seq } = await sites[action](request.params.id, requesterOf(request), actorOf(request));
        return answerSite(request, reply, seq, 200, request.params.id);
      },
    );
  }

  app.post<ById & { Body: unknown }>(
    '/v1/sites/:id/purge',
    {
      config,
      schema: {
        tags,
        summary: "Empty the site's proxy cache on every node serving it: these exact request URIs, or (no paths) everything; nodes apply it with the site's next version",
        response: answers({ 200: WRITTEN_SITE }, [...WAITS, 404]),
        params: idParams,
        body: { type: 'object', description: '{"paths": ["/exact/uri?query"]}, at most 100; omitted or empty: the whole site. 400 invalid_site names a bad path' },
      },
    },
    async (request, reply) => {
      const { seq } = await sites.purge(request.params.id, request.body, requesterOf(request), actorOf(request));
      return answerSite(request, reply, seq, 200, request.params.id);
    },
  );

  app.get<ById>(
    '/v1/sites/:id/deployments',
    { config, schema: { tags, summary: "Per edge node: the site version it serves, or the edge's error for the version it rejected", response: answers({ 200: shape({ deployments: listOf(DEPLOYMENT) }) }, [...READS, 404]), params: idParams } },
    async (request) => {
      await waitForProjection(deps, EDGE_SITES_PROJECTOR, request.headers[MIN_SEQUENCE_HEADER]);
      return { deployments: await sites.deployments(request.params.id, requesterOf(request)) };
    },
  );
}
