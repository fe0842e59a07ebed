/**
 * The messaging directory over HTTP against real NATS, Postgres and Redis:
 * devices and their keys, the one-time prekey race, ownership, bad input,
 * contacts and blocks, and groups. Writes must be visible to the very next
 * read without x-min-sequence: that is what lets a client connect a device to
 * the gateway as soon as it is registered.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { CLAIMS_PER_MINUTE, MAX_DEVICES_PER_USER } from '../../producers/messaging/limits.js';
import { client } from '../support/http.js';
import { isolated, type Isolated } from '../support/isolated.js';
import { testUsers, type TestUsers } from '../support/users.js';

type Key = { id: number; publicKey: string };
type Bundle = { userId: string; identityKey?: string; devices: { deviceId: string; identityKey: string; signedPreKey: { id: number }; oneTimePreKey: Key | null }[] };

const pub = () => randomBytes(32).toString('base64');
const sig = () => randomBytes(64).toString('base64');
const keys = (from: number, n: number): Key[] => Array.from({ length: n }, (_, i) => ({ id: from + i, publicKey: pub() }));
const device = (name: string, oneTimePreKeys: Key[] = keys(1, 3)) => ({ name, identityKey: pub(), signedPreKey: { id: 1, publicKey: pub(), signature: sig() }, oneTimePreKeys });

describe('messaging directory over HTTP', () => {
  let env: Isolated;
  let api: RunningApi;
  let projectors: RunningProjectors;
  let users: TestUsers;
  let call: ReturnType<typeof client>;
  let n = 0;

  beforeAll(async () => {
    env = await isolated();
    projectors = startProjectors(env.rt);
    api = await startApi(env.rt, { host: '127.0.0.1', readTimeoutMs: 5000 });
    call = client(api.url);
    users = testUsers(env.rt);
  });
  afterAll(async () => {
    await api?.close();
    await projectors?.close();
    await env?.cleanup();
  });

  /** A registered client and an access token for them (no argon2, no login limits). */
  async function signedIn(): Promise<{ id: string; token: string }> {
    const { userId } = await users.register(api.identity.deps.handler, { email: `m${++n}-${uuidv7()}@example.org` }, { source: 'relaygrid/test', actor: 'operator:test' });
    return { id: userId, token: api.identity.deps.tokens.issue(userId, uuidv7(), ['client']) };
  }

  async function registerDevice(token: string, body = device('phone')): Promise<string> {
    const res = await call<{ deviceId: string; sequence: number }>('POST', '/v1/devices', { token, body });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.sequence).toBeGreaterThan(0);
    return res.body.deviceId;
  }

  const storedKeys = async (deviceId: string) => (await env.rt.db.selectFrom('one_time_prekeys').select('key_id').where('device_id', '=', deviceId).orderBy('key_id').execute()).map((r) => r.key_id);

  it('registers a device visible at once; counts, tops up and rotates its keys', async () => {
    const alice = await signedIn();
    const body = device('laptop', keys(1, 3));
    const deviceId = await registerDevice(alice.token, body);

    // No x-min-sequence: the 201 already waited for the read model.
    const list = await call<{ devices: { deviceId: string; name: string; identityKey: string }[] }>('GET', '/v1/devices', { token: alice.token });
    expect(list.body.devices).toEqual([expect.objectContaining({ deviceId, name: 'laptop', identityKey: body.identityKey })]);
    const row = await env.rt.db.selectFrom('devices').selectAll().where('id', '=', deviceId).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ user_id: alice.id, signed_prekey_id: 1, signed_prekey: body.signedPreKey.publicKey, removed_at: null });

    expect((await call('GET', `/v1/devices/${deviceId}/prekeys/count`, { token: alice.token })).body).toEqual({ count: 3 });
    const topUp = await call('PUT', `/v1/devices/${deviceId}/prekeys`, { token: alice.token, body: { oneTimePreKeys: keys(4, 2) } });
    expect(topUp.status, JSON.stringify(topUp.body)).toBe(200);
    expect(topUp.body).toMatchObject({ count: 5 });
    expect(await storedKeys(deviceId)).toEqual([1, 2, 3, 4, 5]);

    const rotated = { id: 2, publicKey: pub(), signature: sig() };
    expect((await call('PUT', `/v1/devices/${deviceId}/signed-prekey`, { token: alice.token, body: rotated })).status).toBe(200);
    const after = await call<{ devices: { signedPreKey: unknown }[] }>('GET', '/v1/devices', { token: alice.token });
    expect(after.body.devices[0]?.signedPreKey).toEqual(rotated);
  });

  it('a bundle claims the lowest one-time prekey of every active device, once', async () => {
    const alice = await signedIn();
    const bob = await signedIn();
    const phone = device('phone', keys(10, 2));
    const phoneId = await registerDevice(alice.token, phone);
    const tabletId = await registerDevice(alice.token, device('tablet', []));

    const first = await call<Bundle>('GET', `/v1/keys/${alice.id}`, { token: bob.token });
    expect(first.status).toBe(200);
    expect(first.body.userId).toBe(alice.id);
    expect(first.body.identityKey).toBeDefined();
    const byId = new Map(first.body.devices.map((d) => [d.deviceId, d]));
    expect(byId.get(phoneId)).toMatchObject({ identityKey: phone.identityKey, signedPreKey: { id: 1 }, oneTimePreKey: { id: 10, publicKey: phone.oneTimePreKeys[0]!.publicKey } });
    expect(byId.get(tabletId)?.oneTimePreKey).toBeNull();
    expect((await call<Bundle>('GET', `/v1/keys/${alice.id}`, { token: bob.token })).body.devices.find((d) => d.deviceId === phoneId)?.oneTimePreKey?.id).toBe(11);
    expect((await call<Bundle>('GET', `/v1/keys/${alice.id}`, { token: bob.token })).body.devices.find((d) => d.deviceId === phoneId)?.oneTimePreKey).toBeNull();
    expect((await call('GET', `/v1/keys/${uuidv7()}`, { token: bob.token })).body).toMatchObject({ code: 'user_not_found' });
  });

  it('50 concurrent claims against 30 keys hand out each key at most once', async () => {
    const alice = await signedIn();
    const bob = await signedIn();
    const deviceId = await registerDevice(alice.token, device('phone', keys(1, 30)));
    const answers = await Promise.all(Array.from({ length: 50 }, () => call<Bundle>('GET', `/v1/keys/${alice.id}`, { token: bob.token })));
    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(200));
    const handedOut = answers.map((a) => a.body.devices.find((d) => d.deviceId === deviceId)?.oneTimePreKey ?? null);
    const ids = handedOut.filter((k) => k !== null).map((k) => k.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(handedOut.filter((k) => k === null)).toHaveLength(20);
    expect(await storedKeys(deviceId)).toEqual([]);
  });

  it(`claims are limited to ${CLAIMS_PER_MINUTE} a minute per requester`, async () => {
    const alice = await signedIn();
    const carol = await signedIn();
    let answer;
    for (let i = 0; i <= CLAIMS_PER_MINUTE; i++) {
      answer = await call('GET', `/v1/keys/${alice.id}`, { token: carol.token });
      if (answer.status !== 200) break;
    }
    expect(answer?.status).toBe(429);
    expect(answer?.body).toMatchObject({ code: 'rate_limited' });
    expect(Number(answer?.headers.get('retry-after'))).toBeGreaterThan(0);
    // Someone else is not held back by carol's limit.
    expect((await call('GET', `/v1/keys/${alice.id}`, { token: (await signedIn()).token })).status).toBe(200);
  });

  it("someone else's device answers like an unknown one", async () => {
    const alice = await signedIn();
    const mallory = await signedIn();
    const deviceId = await registerDevice(alice.token);
    for (const target of [deviceId, uuidv7()]) {
      const answers = await Promise.all([
        call('GET', `/v1/devices/${target}/prekeys/count`, { token: mallory.token }),
        call('PUT', `/v1/devices/${target}/prekeys`, { token: mallory.token, body: { oneTimePreKeys: keys(100, 1) } }),
        call('PUT', `/v1/devices/${target}/signed-prekey`, { token: mallory.token, body: { id: 9, publicKey: pub(), signature: sig() } }),
        call('DELETE', `/v1/devices/${target}`, { token: mallory.token }),
      ]);
      for (const a of answers) expect({ status: a.status, code: a.body['code'] }).toEqual({ status: 404, code: 'device_not_found' });
    }
    expect(await storedKeys(deviceId)).toEqual([1, 2, 3]);
    expect((await call('GET', '/v1/devices', { token: mallory.token })).body).toEqual({ devices: [] });
  });

  it('bad keys answer 400 naming the field, and store nothing', async () => {
    const alice = await signedIn();
    const badIdentity = await call('POST', '/v1/devices', { token: alice.token, body: { ...device('x'), identityKey: 'bm90IGEga2V5' } });
    expect(badIdentity.status).toBe(400);
    expect(badIdentity.body).toMatchObject({ code: 'invalid_key', field: 'identityKey' });
    const badOneTime = await call('POST', '/v1/devices', { token: alice.token, body: device('x', [...keys(1, 2), { id: 3, publicKey: '***' }]) });
    expect(badOneTime.body).toMatchObject({ code: 'invalid_key', field: 'oneTimePreKeys.2.publicKey' });
    const shortSignature = await call('POST', '/v1/devices', { token: alice.token, body: { ...device('x'), signedPreKey: { id: 1, publicKey: pub(), signature: pub() } } });
    expect(shortSignature.body).toMatchObject({ code: 'invalid_key', field: 'signedPreKey.signature' });
    const missing = await call('POST', '/v1/devices', { token: alice.token, body: { name: 'x', identityKey: pub() } });
    expect(missing.body).toMatchObject({ code: 'invalid_body', field: 'signedPreKey' });
    expect(await env.rt.db.selectFrom('devices').select('id').where('user_id', '=', alice.id).execute()).toEqual([]);
    const { events } = await api.messaging.deps.handler.store.read(env.rt.names.aggregate('messaging', 'devices', alice.id));
    expect(events).toEqual([]);

    const deviceId = await registerDevice(alice.token);
    const badTopUp = await call('PUT', `/v1/devices/${deviceId}/prekeys`, { token: alice.token, body: { oneTimePreKeys: [...keys(10, 1), { id: 11, publicKey: randomBytes(16).toString('base64') }] } });
    expect(badTopUp.body).toMatchObject({ code: 'invalid_key', field: 'oneTimePreKeys.1.publicKey' });
    expect(await storedKeys(deviceId)).toEqual([1, 2, 3]);
  });

  it(`at most ${MAX_DEVICES_PER_USER} devices; a removed device leaves every bundle and frees its place`, async () => {
    const alice = await signedIn();
    const bob = await signedIn();
    const ids: string[] = [];
    for (let i = 0; i < MAX_DEVICES_PER_USER; i++) ids.push(await registerDevice(alice.token, device(`d${i}`)));
    const refused = await call('POST', '/v1/devices', { token: alice.token, body: device('one too many') });
    expect(refused.status).toBe(409);
    expect(refused.body).toMatchObject({ code: 'device_limit_reached' });

    const gone = ids[0]!;
    const removal = await call('DELETE', `/v1/devices/${gone}`, { token: alice.token });
    expect(removal.status).toBe(200);
    expect(await storedKeys(gone)).toEqual([]);
    const bundle = await call<Bundle>('GET', `/v1/keys/${alice.id}`, { token: bob.token });
    expect(bundle.body.devices.map((d) => d.deviceId).sort()).toEqual(ids.slice(1).sort());
    expect((await call('GET', `/v1/devices/${gone}/prekeys/count`, { token: alice.token })).status).toBe(404);
    expect((await call('DELETE', `/v1/devices/${gone}`, { token: alice.token })).status).toBe(200);
    await registerDevice(alice.token, device('replacement'));
  });

  it('contacts and blocks round trip; a blocked requester sees no devices', async () => {
    const alice = await signedIn();
    const bob = await signedIn();
    await registerDevice(bob.token);

    expect((await call('PUT', `/v1/contacts/${bob.id}`, { token: alice.token })).status).toBe(200);
    expect((await call('PUT', `/v1/contacts/${bob.id}`, { token: alice.token })).status).toBe(200);
    const contacts = await call<{ contacts: { userId: string }[] }>('GET', '/v1/contacts', { token: alice.token });
    expect(contacts.body.contacts.map((c) => c.userId)).toEqual([bob.id]);
    expect((await call<{ contacts: unknown[] }>('GET', '/v1/contacts', { token: bob.token })).body.contacts).toEqual([]);
    expect((await call('DELETE', `/v1/contacts/${bob.id}`, { token: alice.token })).status).toBe(200);
    expect((await call('GET', '/v1/contacts', { token: alice.token })).body).toEqual({ contacts: [] });
    expect((await call('PUT', `/v1/contacts/${alice.id}`, { token: alice.token })).body).toMatchObject({ code: 'cannot_target_self' });
    expect((await call('PUT', `/v1/contacts/${uuidv7()}`, { token: alice.token })).status).toBe(404);
    expect((await call('PUT', '/v1/contacts/not-a-uuid', { token: alice.token })).body).toMatchObject({ code: 'invalid_params', field: 'userId' });

    expect((await call('PUT', `/v1/blocks/${alice.id}`, { token: bob.token })).status).toBe(200);
    expect((await call<{ blocks: { userId: string }[] }>('GET', '/v1/blocks', { token: bob.token })).body.blocks.map((b) => b.userId)).toEqual([alice.id]);
    const hidden = await call<Bundle>('GET', `/v1/keys/${bob.id}`, { token: alice.token });
    expect(hidden.body).toEqual({ userId: bob.id, devices: [] });
    expect(await env.rt.db.selectFrom('blocks').selectAll().where('user_id', '=', bob.id).execute()).toEqual([expect.objectContaining({ blocked_id: alice.id })]);
    expect((await call('DELETE', `/v1/blocks/${alice.id}`, { token: bob.token })).status).toBe(200);
    expect((await call<Bundle>('GET', `/v1/keys/${bob.id}`, { token: alice.token })).body.devices).toHaveLength(1);
  });

  it('groups: members see them, any member adds, the admin removes, anyone leaves, outsiders get 404', async () => {
    const [alice, bob, carol, dave] = await Promise.all([signedIn(), signedIn(), signedIn(), signedIn()]);
    const created = await call<{ groupId: string; sequence: number }>('POST', '/v1/groups', { token: alice.token, body: { name: 'team', members: [bob.id, carol.id] } });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { groupId } = created.body;
    const members = async (token: string) => (await call<{ members: { userId: string }[] }>('GET', `/v1/groups/${groupId}`, { token })).body.members.map((m) => m.userId).sort();

    expect(await members(carol.token)).toEqual([alice.id, bob.id, carol.id].sort());
    expect((await call('GET', `/v1/groups/${groupId}`, { token: dave.token })).body).toMatchObject({ code: 'group_not_found' });
    expect((await call('PUT', `/v1/groups/${groupId}/members/${dave.id}`, { token: dave.token })).status).toBe(404);
    // Naming someone who does not exist tells an outsider nothing either.
    expect((await call('PUT', `/v1/groups/${groupId}/members/${uuidv7()}`, { token: dave.token })).body).toMatchObject({ code: 'group_not_found' });
    expect((await call('PUT', `/v1/groups/${groupId}/members/${uuidv7()}`, { token: carol.token })).body).toMatchObject({ code: 'user_not_found' });

    expect((await call('PUT', `/v1/groups/${groupId}/members/${dave.id}`, { token: carol.token })).status).toBe(200);
    expect(await members(dave.token)).toContain(dave.id);
    expect((await call('DELETE', `/v1/groups/${groupId}/members/${dave.id}`, { token: bob.token })).body).toMatchObject({ code: 'not_group_admin' });
    expect((await call('DELETE', `/v1/groups/${groupId}/members/${dave.id}`, { token: dave.token })).status).toBe(200);
    expect((await call('DELETE', `/v1/groups/${groupId}/members/${carol.id}`, { token: alice.token })).status).toBe(200);
    expect(await members(bob.token)).toEqual([alice.id, bob.id].sort());
    expect((await call('GET', `/v1/groups/${groupId}`, { token: carol.token })).status).toBe(404);

    const bad = await call('POST', '/v1/groups', { token: alice.token, body: { name: 'ghosts', members: [uuidv7()] } });
    expect(bad.body).toMatchObject({ code: 'user_not_found' });
    const row = await env.rt.db.selectFrom('chat_groups').selectAll().where('id', '=', groupId).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ name: 'team', created_by: alice.id });
  });
});
