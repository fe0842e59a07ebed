/**
 * `/v1/fleet/profiles`: inbound profiles (what nodes listen for). Creating a
 * REALITY profile generates its key pair; the answer carries the public key
 * and short ids, and the private key never leaves the fleet context: no
 * answer, read model or log line holds it (profiles.ts, profile views).
 *
 * The schemas check shapes; which settings a kind takes and their syntax are
 * profile-validation.ts's, whose 400 `invalid_profile` names the field.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { PROFILE_KINDS } from '../../fleet/model.js';
import type { ApiDeps } from '../app.js';
import { actorOf } from '../authenticate.js';
import { answerWritten, MIN_SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { OPERATOR } from './fleet-nodes.js';
import { body } from './schemas.js';
import { answers, BOOLEAN, INTEGER, READS, listOf, SEQUENCE, shape, STRING, STRINGS as ANY_STRINGS, WAITS } from '../contract.js';

/** profiles.ts's PROFILE_ID: it is the inbound's tag and a NATS subject token. */
const PROFILE_ID = { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,62}$' } as const;
const profileParams = { type: 'object', required: ['id'], properties: { id: PROFILE_ID } } as const;
const STRINGS = { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 253 } } as const;
const PATH = { type: 'string', maxLength: 4096 } as const;

/**
 * Every setting any kind accepts. `publicKey` is not among them: the server
 * derives it with the private key, so it is an unknown field here.
 */
const SETTINGS = body(
  {
    dest: { type: 'string', maxLength: 300 },
    serverNames: STRINGS,
    shortIds: STRINGS,
    fingerprint: { type: 'string', maxLength: 32 },
    flow: { type: 'string', maxLength: 32 },
    certificateFile: PATH,
    keyFile: PATH,
  },
  [],
);
const SHAPE = {
  port: { type: 'integer', minimum: 1, maximum: 65_535 },
  labels: { type: 'array', maxItems: 64, items: { type: 'string', maxLength: 64 } },
  settings: SETTINGS,
} as const;

/** A profile as answers show it: the settings sent, plus the REALITY public key the server derived. */
const PROFILE = shape({
  profileId: PROFILE_ID,
  kind: { type: 'string', enum: [...PROFILE_KINDS] },
  port: INTEGER,
  labels: ANY_STRINGS,
  settings: shape({ ...SETTINGS.properties, publicKey: STRING }, [...Object.keys(SETTINGS.properties), 'publicKey']),
  removed: BOOLEAN,
  sequence: SEQUENCE,
});

type ProfileBody = { profileId: string; kind: string; port: number; labels?: string[]; settings?: Record<string, unknown> };

export function fleetProfileRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { profiles } = deps.fleet;
  const tags = ['fleet'];
  const config = { access: OPERATOR };

  /** A write's answer: the profile as the read model has it once the write is in. */
  const answerProfile = (reply: FastifyReply, seq: number, status: number, profileId: string) =>
    answerWritten(deps, reply, 'fleet', seq, status, async (): Promise<Record<string, unknown>> => ({ ...(await profiles.view(profileId)) }));

  app.get('/v1/fleet/profiles', { config, schema: { tags, summary: 'Live profiles (removed ones left out), by id', response: answers({ 200: shape({ profiles: listOf(PROFILE) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, 'fleet', request.headers[MIN_SEQUENCE_HEADER]);
    return { profiles: await profiles.list() };
  });

  app.get<{ Params: { id: string } }>('/v1/fleet/profiles/:id', { config, schema: { tags, summary: 'One profile, removed or not, with its public settings', response: answers({ 200: PROFILE }, [...READS, 404]), params: profileParams } }, async (request) => {
    await waitForProjection(deps, 'fleet', request.headers[MIN_SEQUENCE_HEADER]);
    return profiles.view(request.params.id);
  });

  app.post<{ Body: ProfileBody }>(
    '/v1/fleet/profiles',
    {
      config,
      schema: {
        tags,
        summary: 'Create a profile; vless-reality gets a fresh key pair (the answer has the public key and short ids)', response: answers({ 201: PROFILE }, [...WAITS, 409, 422]),
        body: body({ profileId: PROFILE_ID, kind: { type: 'string', enum: [...PROFILE_KINDS] }, ...SHAPE }, ['profileId', 'kind', 'port']),
      },
    },
    async (request, reply) => {
      const { seq, profile } = await profiles.create(request.body, actorOf(request));
      return answerProfile(reply, seq, 201, profile.profileId);
    },
  );

  app.put<{ Params: { id: string }; Body: Omit<ProfileBody, 'profileId' | 'kind'> }>(
    '/v1/fleet/profiles/:id',
    {
      config,
      schema: {
        tags,
        summary: 'Replace port, labels and settings; the kind and the REALITY keys stay (a new key pair is a new profile)', response: answers({ 200: PROFILE }, [...WAITS, 404, 409, 422]),
        params: profileParams,
        body: body(SHAPE, ['port']),
      },
    },
    async (request, reply) => {
      const { seq } = await profiles.update(request.params.id, request.body, actorOf(request));
      return answerProfile(reply, seq, 200, request.params.id);
    },
  );

  app.delete<{ Params: { id: string } }>(
    '/v1/fleet/profiles/:id',
    { config, schema: { tags, summary: 'Remove a profile; nodes drop it at the next rollout', response: answers({ 200: shape({ profileId: PROFILE_ID, removed: BOOLEAN, sequence: SEQUENCE }) }, [...WAITS, 404, 409, 422]), params: profileParams } },
    async (request, reply) => {
      const { seq } = await profiles.remove(request.params.id, actorOf(request));
      return answerWritten(deps, reply, 'fleet', seq, 200, { profileId: request.params.id, removed: true });
    },
  );
}
