/**
 * `/v1/devices` and `/v1/keys`: a user's messenger devices and the key
 * bundles others fetch to open end-to-end sessions with them. Device ids in
 * paths must be the caller's own; anyone else's answers like an unknown one.
 */
import type { FastifyInstance } from 'fastify';
import type { SignedPreKey } from '../../messaging/devices.decider.js';
import type { NewDevice } from '../../messaging/devices.js';
import type { OneTimePreKey } from '../../messaging/key-shapes.js';
import type { DeviceTable } from '../../../schema/database.js';
import { actorOf, principalOf } from '../authenticate.js';
import type { ApiDeps } from '../app.js';
import { answerWritten, MIN_SEQUENCE_HEADER, SEQUENCE_HEADER, waitForProjection } from '../read-your-writes.js';
import { DEVICE_NAME, KEY_STRING, MESSENGER, ONE_TIME_PREKEYS, SIGNED_PREKEY, userParams } from './messaging-schemas.js';
import { body, idParams, UUID } from './schemas.js';
import { answers, INTEGER, listOf, nullable, READS, SEQUENCE, shape, STRING, TIME, WAITS, WRITTEN } from '../contract.js';

const SIGNED_PREKEY_VIEW = shape({ id: INTEGER, publicKey: STRING, signature: STRING });
const DEVICE = shape({ deviceId: UUID, name: STRING, identityKey: STRING, signedPreKey: SIGNED_PREKEY_VIEW, registeredAt: TIME });
const BUNDLE = shape(
  {
    userId: UUID,
    identityKey: STRING,
    devices: listOf(shape({ deviceId: UUID, identityKey: STRING, signedPreKey: SIGNED_PREKEY_VIEW, oneTimePreKey: nullable({ ...shape({ id: INTEGER, publicKey: STRING }), type: 'object' }) })),
  },
  ['identityKey'],
);
/** An inclusion proof file is replay's format (replay/audit/proof.ts, docs/auditors.md). */
const PROOF = { type: ['object', 'null'], additionalProperties: true };
const TRANSPARENCY = shape({ userId: UUID, devices: listOf(shape({ deviceId: UUID, identityKey: STRING, eventId: STRING, proof: PROOF, pending: STRING }, ['pending'])) });

function deviceView(device: DeviceTable) {
  return {
    deviceId: device.id,
    name: device.name,
    identityKey: device.identity_key,
    signedPreKey: { id: device.signed_prekey_id, publicKey: device.signed_prekey, signature: device.signed_prekey_signature },
    registeredAt: device.registered_at.toISOString(),
  };
}

export function deviceRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const { devices } = deps.messaging;
  const tags = ['messaging'];
  const config = { access: MESSENGER };

  app.post<{ Body: NewDevice }>(
    '/v1/devices',
    {
      config,
      schema: {
        tags,
        summary: 'Register a device with its identity key, signed prekey and one-time prekeys; answers once the gateway will accept it', response: answers({ 201: shape({ deviceId: UUID, sequence: SEQUENCE }) }, [...WAITS, 409, 422]),
        body: body({ name: DEVICE_NAME, identityKey: KEY_STRING, signedPreKey: SIGNED_PREKEY, oneTimePreKeys: ONE_TIME_PREKEYS }, ['name', 'identityKey', 'signedPreKey']),
      },
    },
    async (request, reply) => {
      const { deviceId, seq } = await devices.register(principalOf(request).userId, { ...request.body, oneTimePreKeys: request.body.oneTimePreKeys ?? [] }, actorOf(request));
      return answerWritten(deps, reply, 'devices', seq, 201, { deviceId });
    },
  );

  app.get('/v1/devices', { config, schema: { tags, summary: 'Your active devices', response: answers({ 200: shape({ devices: listOf(DEVICE) }) }, READS) } }, async (request) => {
    await waitForProjection(deps, 'devices', request.headers[MIN_SEQUENCE_HEADER]);
    return { devices: (await devices.list(principalOf(request).userId)).map(deviceView) };
  });

  app.put<{ Params: { id: string }; Body: { oneTimePreKeys: OneTimePreKey[] } }>(
    '/v1/devices/:id/prekeys',
    { config, schema: { tags, summary: 'Top up one-time prekeys; answers how many are unclaimed now', response: answers({ 200: shape({ count: INTEGER, sequence: SEQUENCE }) }, [404, 409, 422]), params: idParams, body: body({ oneTimePreKeys: { ...ONE_TIME_PREKEYS, minItems: 1 } }, ['oneTimePreKeys']) } },
    async (request, reply) => {
      const { seq, count } = await devices.uploadPreKeys(principalOf(request).userId, request.params.id, request.body.oneTimePreKeys, actorOf(request));
      // The keys are in their (command-side) table already: no read model to wait for.
      return reply.header(SEQUENCE_HEADER, String(seq)).send({ count, sequence: seq });
    },
  );

  app.put<{ Params: { id: string }; Body: SignedPreKey }>(
    '/v1/devices/:id/signed-prekey',
    { config, schema: { tags, summary: 'Rotate the signed prekey of one of your devices', response: answers({ 200: WRITTEN }, [...WAITS, 404, 422]), params: idParams, body: SIGNED_PREKEY } },
    async (request, reply) => {
      const { seq } = await devices.rotateSignedPreKey(principalOf(request).userId, request.params.id, request.body, actorOf(request));
      return answerWritten(deps, reply, 'devices', seq, 200);
    },
  );

  app.get<{ Params: { id: string } }>('/v1/devices/:id/prekeys/count', { config, schema: { tags, summary: 'Unclaimed one-time prekeys of one of your devices', response: answers({ 200: shape({ count: INTEGER }) }, [404]), params: idParams } }, async (request) => ({
    count: await devices.preKeyCount(principalOf(request).userId, request.params.id),
  }));

  app.delete<{ Params: { id: string } }>('/v1/devices/:id', { config, schema: { tags, summary: 'Unlink a device: it leaves every key bundle and its prekeys are deleted', response: answers({ 200: WRITTEN }, [...WAITS, 404, 422]), params: idParams } }, async (request, reply) => {
    const { seq } = await devices.remove(principalOf(request).userId, request.params.id, actorOf(request));
    return answerWritten(deps, reply, 'devices', seq, 200);
  });

  app.get<{ Params: { userId: string } }>(
    '/v1/keys/:userId',
    { config, schema: { tags, summary: "A user's key bundle: one claimed one-time prekey per active device (rate-limited per caller)", response: answers({ 200: BUNDLE }, [404, 429]), params: userParams } },
    (request) => devices.claimBundle(principalOf(request).userId, request.params.userId),
  );

  app.get<{ Params: { userId: string } }>(
    '/v1/keys/:userId/transparency',
    {
      config,
      schema: {
        tags,
        summary: "Key transparency: for each active device, the event that registered its identity key and that event's inclusion proof in the signed audit log", response: answers({ 200: TRANSPARENCY }, [404]),
        params: userParams,
      },
    },
    (request) => deps.messaging.transparency.evidence(principalOf(request).userId, request.params.userId),
  );
}
