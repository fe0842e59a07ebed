/**
 * NATS accounts and permissions from infra/: with a server of its own started
 * from the generated configuration, application (service) credentials can
 * append and read events but cannot delete, purge or update a stream or delete
 * a message — not of a context stream, not of the audit stream — and analyst
 * credentials can read but not append. The gateway's credentials may also
 * delete messenger inbox entries, and nothing of any log.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectNats, type Nats } from '../../infra/nats/connection.js';
import { natsServerConfig } from '../../infra/nats/server-config.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { uuidv7 } from '../../contracts/ids.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { join } from 'node:path';
import { openRuntime } from '../../infra/runtime.js';
import { generateKeyPair, parseSignerKey } from '../../replay/audit/note.js';
import { startAuditWorker } from '../../workers/audit/audit-worker.js';
import { startNatsServer, type OwnNatsServer } from '../support/nats-server.js';
import { testUsers } from '../support/users.js';

describe('NATS permissions from infra/', () => {
  const passwords = { operator: randomBytes(12).toString('hex'), service: randomBytes(12).toString('hex'), analyst: randomBytes(12).toString('hex'), audit: randomBytes(12).toString('hex'), gateway: randomBytes(12).toString('hex') };
  let server: OwnNatsServer;
  let env: Isolated;
  let service: Nats;
  let analyst: Nats;
  const url = (user: keyof typeof passwords) => `nats://${user}:${passwords[user]}@127.0.0.1:${server.port}`;

  beforeAll(async () => {
    const namespace = `t${randomBytes(5).toString('hex')}`;
    server = await startNatsServer((port, storeDir) => natsServerConfig({ namespace, port, storeDir, passwords }));
    // migrate runs with operator credentials, as in production.
    env = await isolated({ env: { NATS_URL: url('operator'), RG_NAMESPACE: namespace } });
    service = await connectNats(url('service'), 'test-service');
    analyst = await connectNats(url('analyst'), 'test-analyst');
  }, 60_000);
  afterAll(async () => {
    await service?.close();
    await analyst?.close();
    await env?.cleanup();
    await server?.stop();
  });

  it('service credentials append and read events', async () => {
    const store = new EventStore(service, env.rt.names, env.rt.registry);
    const userId = uuidv7();
    const event = await testUsers(env.rt).registered(userId, 'perm@example.org');
    const { seq } = await store.append(env.rt.names.aggregate('identity', 'user', userId), [event], { expectedSeq: 0, meta: { source: 'relaygrid/test' } });
    expect(seq).toBeGreaterThan(0);
    const { events } = await store.read(env.rt.names.aggregate('identity', 'user', userId));
    expect(events).toHaveLength(1);
  });

  it.each([
    ['delete the audit stream', (n: Nats, s: string) => n.jsm.streams.delete(s)],
    ['purge the audit stream', (n: Nats, s: string) => n.jsm.streams.purge(s)],
    ['update the audit stream', async (n: Nats, s: string) => n.jsm.streams.update(s, { ...(await n.jsm.streams.info(s)).config, deny_delete: false })],
    ['delete a message of the audit stream', (n: Nats, s: string) => n.jsm.streams.deleteMessage(s, 1)],
    ['create a stream', (n: Nats, s: string) => n.jsm.streams.add({ name: `${s}_SHADOW`, subjects: ['shadow.>'] })],
  ])('service credentials cannot %s', async (_what, attempt) => {
    const audit = env.rt.names.auditStream;
    await expect(attempt(service, audit)).rejects.toThrow(/permissions? violation/i);
    const identity = env.rt.names.stream('identity');
    await expect(attempt(service, identity)).rejects.toThrow(/permissions? violation/i);
    // The streams are still there, unchanged.
    const info = await env.rt.nats.jsm.streams.info(audit);
    expect(info.config.deny_delete).toBe(true);
    expect(info.config.deny_purge).toBe(true);
  });

  it('service credentials cannot publish an audit checkpoint (it could never be removed)', async () => {
    await expect(service.js.publish(env.rt.names.auditCheckpointSubject, 'forged')).rejects.toThrow(/permissions? violation/i);
  });

  it('the audit worker runs with audit credentials (migrate created its checkpoint stream)', async () => {
    const rt = await openRuntime({ ...env.config, natsUrl: url('audit') }, 'test-audit');
    try {
      const keys = generateKeyPair('test.relaygrid/audit');
      const worker = await startAuditWorker(rt, { signer: parseSignerKey(keys.signer), checkpointDir: join(server.dir, 'checkpoints'), checkpointEvery: 1000, checkpointSeconds: 3600 });
      await eventually(() => worker.status().treeSize > 0);
      expect(await worker.checkpoint()).toBeGreaterThan(0);
      await worker.close();
    } finally {
      await rt.close();
    }
  });

  it('gateway credentials delete inbox entries (acknowledged ciphertext) but no message of an event or audit stream; service credentials delete neither', async () => {
    const gateway = await connectNats(url('gateway'), 'test-gateway');
    try {
      const first = await gateway.js.publish(env.rt.names.inboxDevice('d1'), 'ciphertext');
      const second = await gateway.js.publish(env.rt.names.inboxDevice('d1'), 'ciphertext');
      await expect(service.jsm.streams.deleteMessage(env.rt.names.inboxStream, first.seq)).rejects.toThrow(/permissions? violation/i);
      expect(await gateway.jsm.streams.deleteMessage(env.rt.names.inboxStream, first.seq)).toBe(true);
      expect((await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream)).state.messages).toBe(1);
      expect(second.seq).toBeGreaterThan(first.seq);
      for (const stream of [env.rt.names.stream('identity'), env.rt.names.stream('messaging'), env.rt.names.auditStream, env.rt.names.auditCheckpointStream]) {
        await expect(gateway.jsm.streams.deleteMessage(stream, 1)).rejects.toThrow(/permissions? violation/i);
      }
      await expect(gateway.jsm.streams.purge(env.rt.names.inboxStream)).rejects.toThrow(/permissions? violation/i);
    } finally {
      await gateway.close();
    }
  });

  it('analyst credentials read streams but cannot append events', async () => {
    const info = await analyst.jsm.streams.info(env.rt.names.stream('identity'));
    expect(info.state.messages).toBeGreaterThan(0);
    const first = await analyst.jsm.direct.getMessage(env.rt.names.stream('identity'), { seq: info.state.first_seq });
    expect(first?.seq).toBe(info.state.first_seq);
    const store = new EventStore(analyst, env.rt.names, env.rt.registry);
    const userId = uuidv7();
    const event = await testUsers(env.rt).registered(userId, 'forged@example.org');
    await expect(store.append(env.rt.names.aggregate('identity', 'user', userId), [event], { expectedSeq: 0, meta: { source: 'forger' } })).rejects.toThrow(/permissions? violation/i);
    expect((await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'))).state.messages).toBe(info.state.messages);
  });
});
