/**
 * `/v1/fleet/nodes`: operators register, describe, drain and retire proxy
 * nodes and issue enrollment tokens; `/v1/fleet/enroll` is where a node's
 * agent redeems its token (public: the token is the credential).
 *
 * The schemas check shapes; the rules (host names, label syntax, the country
 * code) are nodes.ts's, whose 400 `invalid_node` names the field, so there
 * is one definition of a valid node.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { NodeInput } from '../../fleet/nodes.js';
import type { Role } from '../../identity/roles.js';
import { actorOf } from '../authenticate.js';
import type { ApiDeps } from '../app.js';
import { answerWritten, MIN_SEQUENCE_HEADER, SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { body } from './schemas.js';
import { answers, BOOLEAN, listOf, nullable, READS, SEQUENCE, shape, STRING, STRINGS, TIME, WAITS } from '../contract.js';

export const OPERATOR: readonly Role[] = ['operator'];
/** nodes.ts's NODE_ID: the id is a NATS subject token and a DNS-friendly name. */
export const NODE_ID = { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } as const;
const TOKENS = { type: 'array', maxItems: 32, items: { type: 'string', minLength: 1, maxLength: 64 } } as const;
const DESCRIPTION = {
  address: { type: 'string', minLength: 1, maxLength: 255 },
  region: { type: 'string', maxLength: 64 },
  country: { type: 'string', maxLength: 2 },
  city: { type: 'string', maxLength: 128 },
  labels: TOKENS,
  roles: TOKENS,
} as const;
/** A node as the fleet read model has it (producers/fleet/views.ts). */
const NODE_PROPERTIES = {
  nodeId: NODE_ID,
  address: STRING,
  region: STRING,
  country: STRING,
  city: STRING,
  labels: STRINGS,
  roles: STRINGS,
  health: STRING,
  healthReason: nullable(STRING),
  drained: BOOLEAN,
  retired: BOOLEAN,
  enrolled: BOOLEAN,
  desiredTemplate: nullable(STRING),
  appliedTemplate: nullable(STRING),
  appliedVersion: nullable(STRING),
  appliedAt: nullable(TIME),
  lastError: nullable(STRING),
  sequence: SEQUENCE,
};
const NODE = shape(NODE_PROPERTIES);
const nodeParams = { type: 'object', required: ['id'], properties: { id: NODE_ID } } as const;

type Description = Omit<NodeInput, 'nodeId'>;

export function fleetNodeRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { fleet } = deps;
  const tags = ['fleet'];
  const config = { access: OPERATOR };

  /** A write's answer: the node as the read model has it once the write is in, and the sequence. */
  const answerNode = (reply: FastifyReply, seq: number, status: number, nodeId: string, extra: Record<string, unknown> = {}) =>
    answerWritten(deps, reply, 'fleet', seq, status, async () => ({ ...(await fleet.views.node(nodeId)), ...extra }));

  /**
   * A write whose answer holds a secret shown only once (a token, a password):
   * it waits for the read model like any write, but if that takes too long it
   * answers anyway, since a 503 would throw away a secret that is already spent.
   */
  const answerSecret = async (reply: FastifyReply, seq: number, status: number, payload: Record<string, unknown>) => {
    await deps.watcher.waitFor('fleet', seq, deps.readTimeoutMs ?? 5000);
    return reply.status(status).header(SEQUENCE_HEADER, String(seq)).header('cache-control', 'no-store').send({ ...payload, sequence: seq });
  };

  app.get('/v1/fleet/nodes', { config, schema: { tags, summary: 'Every node, retired ones included, by name', response: answers({ 200: shape({ nodes: listOf(NODE) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, 'fleet', request.headers[MIN_SEQUENCE_HEADER]);
    return { nodes: await fleet.views.nodes() };
  });

  app.get<{ Params: { id: string } }>('/v1/fleet/nodes/:id', { config, schema: { tags, summary: 'One node: description, health, drain, enrollment, templates', response: answers({ 200: NODE }, [...READS, 404]), params: nodeParams } }, async (request) => {
    await waitForProjection(deps, 'fleet', request.headers[MIN_SEQUENCE_HEADER]);
    return fleet.views.node(request.params.id);
  });

  app.post<{ Body: NodeInput }>(
    '/v1/fleet/nodes',
    { config, schema: { tags, summary: 'Register a new node (409 node_exists if the name is taken)', response: answers({ 201: NODE }, [...WAITS, 409, 422]), body: body({ nodeId: NODE_ID, ...DESCRIPTION }, ['nodeId', 'address']) } },
    async (request, reply) => {
      const { seq } = await fleet.nodes.register(request.body, 'api', actorOf(request));
      return answerNode(reply, seq, 201, request.body.nodeId);
    },
  );

  app.put<{ Params: { id: string }; Body: Description }>(
    '/v1/fleet/nodes/:id',
    {
      config,
      schema: { tags, summary: 'Create or update a node; the same description again records nothing', response: answers({ 200: shape({ ...NODE_PROPERTIES, changed: BOOLEAN }) }, [...WAITS, 409, 422]), params: nodeParams, body: body(DESCRIPTION, ['address']) },
    },
    async (request, reply) => {
      const { seq, changed } = await fleet.nodes.describe({ ...request.body, nodeId: request.params.id }, 'api', actorOf(request));
      return answerNode(reply, seq, 200, request.params.id, { changed });
    },
  );

  for (const [path, type, summary] of [
    ['drain', 'Drain', 'Drain: left out of subscriptions; its users move to other nodes'],
    ['undrain', 'Undrain', 'Undo a drain'],
    ['retire', 'Retire', 'Retire for good: the name stays taken, agents are refused'],
  ] as const) {
    app.post<{ Params: { id: string } }>(`/v1/fleet/nodes/:id/${path}`, { config, schema: { tags, summary, response: answers({ 200: NODE }, [...WAITS, 404, 409, 422]), params: nodeParams } }, async (request, reply) => {
      const { seq } = await fleet.nodes.operate(type, request.params.id, actorOf(request));
      return answerNode(reply, seq, 200, request.params.id);
    });
  }

  app.post<{ Params: { id: string } }>(
    '/v1/fleet/nodes/:id/enrollment-token',
    { config, schema: { tags, summary: 'A one-time token (24 h) the node agent redeems at /v1/fleet/enroll; a new one replaces the last', response: answers({ 201: shape({ nodeId: NODE_ID, token: STRING, expiresAt: TIME, sequence: SEQUENCE }) }, [404, 409, 422]), params: nodeParams } },
    async (request, reply) => {
      const { seq, token, expiresAt } = await fleet.nodes.issueEnrollmentToken(request.params.id, actorOf(request));
      return answerSecret(reply, seq, 201, { nodeId: request.params.id, token, expiresAt: expiresAt.toISOString() });
    },
  );

  app.post<{ Body: { token: string } }>(
    '/v1/fleet/enroll',
    {
      config: { access: 'public' },
      schema: { tags, summary: "A node agent redeems its enrollment token, once, for its NATS credentials", response: answers({ 200: shape({ nodeId: NODE_ID, nats: shape({ user: STRING, password: STRING, inboxPrefix: STRING }), sequence: SEQUENCE }) }, [401, 409, 422]), security: [], body: body({ token: { type: 'string', minLength: 1, maxLength: 256 } }, ['token']) },
    },
    async (request, reply) => {
      // A token naming no node answers like any other bad token (Nodes.enroll), so names cannot be probed.
      const { seq, nodeId, user, password } = await fleet.nodes.enroll(request.body.token);
      return answerSecret(reply, seq, 200, { nodeId, nats: { user, password, inboxPrefix: fleet.deps.names.fleetInbox(nodeId) } });
    },
  );
}
