/**
 * Key transparency over HTTP: the event that registered a device's identity
 * key comes with an inclusion proof in the signed audit log, which a client
 * verifies offline against the audit key, and whose event carries exactly the
 * key the bundle handed out.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeMessage } from '../../contracts/envelope.js';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { generateKeyPair, parseSignerKey, parseVerifierKey } from '../../replay/audit/note.js';
import { verifyProofFile, type InclusionProofFile } from '../../replay/audit/proof.js';
import { startAuditWorker, type AuditWorker } from '../../workers/audit/audit-worker.js';
import { client } from '../support/http.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { person, type Call } from '../support/messenger.js';

type Evidence = { userId: string; devices: { deviceId: string; identityKey: string; eventId: string; proof: InclusionProofFile | null; pending?: string }[] };

describe('key transparency', () => {
  let env: Isolated;
  let api: RunningApi;
  let projectors: RunningProjectors;
  let worker: AuditWorker;
  let call: Call;
  const checkpointDir = mkdtempSync(join(tmpdir(), 'rg-kt-'));
  let keys: ReturnType<typeof generateKeyPair>;

  beforeAll(async () => {
    env = await isolated({ env: { RG_TRUST_PROXY: 'true', RG_REGISTER_LIMIT_PER_IP: '10000', RG_LOGIN_LIMIT_PER_IP: '10000' } });
    keys = generateKeyPair(`relaygrid.test/${env.namespace}`);
    projectors = startProjectors(env.rt);
    worker = await startAuditWorker(env.rt, { signer: parseSignerKey(keys.signer), checkpointDir, checkpointEvery: 5, checkpointSeconds: 1, standbyPollMs: 100 });
    api = await startApi(env.rt, { host: '127.0.0.1' });
    call = client(api.url);
  });
  afterAll(async () => {
    await api?.close();
    await worker?.close();
    await projectors?.close();
    await env?.cleanup();
    rmSync(checkpointDir, { recursive: true, force: true });
  });

  it('every active device comes with the proven event of its identity key, which matches the bundle', async () => {
    const bob = await person(call, 2);
    const alice = await person(call);
    let last = '';
    const evidence = await eventually(async () => {
      const res = await call<Evidence>('GET', `/v1/keys/${bob.userId}/transparency`, { token: alice.token });
      expect(res.status).toBe(200);
      last = JSON.stringify(res.body.devices.map((d) => d.pending));
      return res.body.devices.length === 2 && res.body.devices.every((d) => d.proof) ? res.body : undefined;
    }, 15_000).catch(async (err: unknown) => {
      const { rows } = await (await import('kysely')).sql<{ n: string }>`select count(*) as n from audit_events`.execute(env.rt.db);
      const st = await (await import('kysely')).sql<{ tree_size: string }>`select tree_size from audit_state`.execute(env.rt.db);
      const sizes = await Promise.all([env.rt.names.stream('identity'), env.rt.names.stream('messaging'), env.rt.names.auditStream].map(async (n) => (await env.rt.nats.jsm.streams.info(n)).state.messages));
      await new Promise((r) => setTimeout(r, 10_000));
      const info = await env.rt.nats.jsm.streams.info(env.rt.names.auditStream);
      last += ` sizes ${JSON.stringify(sizes)} audit-after-10s ${info.state.messages} sources ${JSON.stringify(info.sources?.map((x) => [x.name, x.lag, x.active]))}`;
      const { events } = await api.messaging.deps.handler.store.read(env.rt.names.aggregate('messaging', 'devices', bob.userId));
      throw new Error(`${(err as Error).message}; pending: ${last}; audit_events ${rows[0]?.n} tree ${JSON.stringify(st.rows)} stream ${info.state.messages}; events ${JSON.stringify(events.map((e) => [e.type, e.id, e.seq]))}`);
    });
    const bundle = await call<{ devices: { deviceId: string; identityKey: string }[] }>('GET', `/v1/keys/${bob.userId}`, { token: alice.token });
    const verifier = parseVerifierKey(keys.verifier);
    for (const device of evidence.devices) {
      const proof = device.proof as InclusionProofFile;
      // Offline: the checkpoint's signature, the path to its root, and the event id inside the proven message.
      expect(verifyProofFile(proof, proof.checkpoint, verifier, 'the proof').eventId).toBe(device.eventId);
      const headers = natsHeaders();
      for (const [name, value] of proof.message.headers) headers.append(name, value);
      const events = decodeMessage(env.rt.registry, { seq: proof.message.seq, subject: proof.message.subject, headers, data: Buffer.from(proof.message.data, 'base64') });
      const registered = events.find((e) => e.id === device.eventId);
      expect(registered?.type).toBe('messaging.DeviceRegistered');
      expect((registered?.data as { identityKey: string }).identityKey).toBe(device.identityKey);
      expect(bundle.body.devices.find((d) => d.deviceId === device.deviceId)?.identityKey).toBe(device.identityKey);
    }
  });

  it('a removed device drops out; an unknown user is 404; someone the user blocked sees no devices', async () => {
    const bob = await person(call, 2);
    const carol = await person(call);
    expect((await call('DELETE', `/v1/devices/${bob.devices[1]}`, { token: bob.token })).status).toBe(200);
    const res = await call<Evidence>('GET', `/v1/keys/${bob.userId}/transparency`, { token: carol.token });
    expect(res.body.devices.map((d) => d.deviceId)).toEqual([bob.devices[0]]);
    expect((await call('GET', `/v1/keys/01a20000-0000-7000-8000-000000000000/transparency`, { token: carol.token })).status).toBe(404);
    expect((await call('PUT', `/v1/blocks/${carol.userId}`, { token: bob.token })).status).toBeLessThan(300);
    expect((await call<Evidence>('GET', `/v1/keys/${bob.userId}/transparency`, { token: carol.token })).body.devices).toEqual([]);
  });
});
