import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kvm } from '@nats-io/kv';
import { sql } from 'kysely';
import { EVENT_CONTEXTS } from '../../contracts/catalogue.js';
import { fingerprintHex } from '../../contracts/codec.js';
import { migrate } from '../../infra/migrate.js';
import { DUPLICATE_WINDOW_NS } from '../../infra/streams/definitions.js';
import { isolated, type Isolated } from '../support/isolated.js';

describe('relaygrid migrate', () => {
  let env: Isolated;
  let first: Awaited<ReturnType<typeof migrate>>;

  beforeAll(async () => {
    env = await isolated({ migrate: false });
    first = await migrate({ ...env.rt, replicas: 1 });
  });
  afterAll(() => env.cleanup());

  it('creates one stream per context, the audit stream and its checkpoint stream, and the messenger inbox', () => {
    expect(first.streams.map((s) => [s.name, s.action])).toEqual([
      ...EVENT_CONTEXTS.map((c) => [env.rt.names.stream(c), 'created']),
      [env.rt.names.auditStream, 'created'],
      [`${env.rt.names.auditStream}_CHECKPOINTS`, 'created'],
      [env.rt.names.guardStream, 'created'],
      [env.rt.names.inboxStream, 'created'],
    ]);
  });

  it('the inbox stream allows deleting acknowledged entries and keeps the rest one hour past the retention', async () => {
    const { config } = await env.rt.nats.jsm.streams.info(env.rt.names.inboxStream);
    expect(config).toMatchObject({
      subjects: [`${env.config.namespace}.inbox.>`],
      retention: 'limits',
      storage: 'file',
      deny_delete: false,
      deny_purge: false,
      allow_direct: true,
      max_age: (env.config.messaging.inboxRetentionSeconds + 3600) * 1_000_000_000,
      duplicate_window: DUPLICATE_WINDOW_NS,
    });
    expect(env.rt.names.stream('messaging')).not.toBe(env.rt.names.inboxStream);
  });

  it('the server kept every setting asked for', async () => {
    for (const context of EVENT_CONTEXTS) {
      const { config } = await env.rt.nats.jsm.streams.info(env.rt.names.stream(context));
      expect(config).toMatchObject({
        subjects: [`${env.config.namespace}.evt.${context}.>`],
        retention: 'limits',
        storage: 'file',
        discard: 'old',
        max_msgs: -1,
        max_bytes: -1,
        max_age: 0,
        max_msgs_per_subject: -1,
        num_replicas: 1,
        duplicate_window: DUPLICATE_WINDOW_NS,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        allow_rollup_hdrs: false,
      });
    }
    const audit = (await env.rt.nats.jsm.streams.info(env.rt.names.auditStream)).config;
    expect(audit).toMatchObject({ deny_delete: true, deny_purge: true, allow_direct: true, max_age: 0, max_msgs: -1, max_bytes: -1 });
    expect(audit.sources?.map((s) => s.name).sort()).toEqual(EVENT_CONTEXTS.map((c) => env.rt.names.stream(c)).sort());
    const checkpoints = (await env.rt.nats.jsm.streams.info(`${env.rt.names.auditStream}_CHECKPOINTS`)).config;
    expect(checkpoints).toMatchObject({ subjects: [`${env.config.namespace}.audit.checkpoint`], deny_delete: true, deny_purge: true, max_age: 0, max_msgs: -1 });
  });

  it('refuses to delete or purge events', async () => {
    const stream = env.rt.names.stream('identity');
    await env.rt.nats.js.publish(`${env.config.namespace}.evt.identity.probe.p1`, 'x');
    await expect(env.rt.nats.jsm.streams.deleteMessage(stream, 1)).rejects.toThrow();
    await expect(env.rt.nats.jsm.streams.purge(stream)).rejects.toThrow();
    expect((await env.rt.nats.jsm.streams.info(stream)).state.messages).toBe(1);
  });

  it('publishes every schema to the KV bucket keyed by fingerprint', async () => {
    const kv = await new Kvm(env.rt.nats.js).open(env.rt.names.schemaBucket);
    for (const schema of env.rt.registry.all()) {
      const entry = await kv.get(fingerprintHex(schema.fingerprint));
      expect(entry?.json<{ type: string }>().type).toBe(schema.ceType);
    }
  });

  it('creates the Postgres tables', async () => {
    const { rows } = await sql<{ table_name: string }>`select table_name from information_schema.tables where table_schema = 'public' order by 1`.execute(env.rt.db);
    expect(rows.map((r) => r.table_name)).toEqual(expect.arrayContaining(['projector_checkpoints', 'projector_failures', 'users']));
  });

  it('a second run changes nothing', async () => {
    const before = await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'));
    const second = await migrate({ ...env.rt, replicas: 1 });
    expect(second.streams.every((s) => s.action === 'unchanged')).toBe(true);
    expect(second.schemas.published).toBe(0);
    expect(second.tables).toEqual([]);
    const after = await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'));
    expect(after.created).toBe(before.created);
  });

  it('repairs a setting that drifted', async () => {
    const name = env.rt.names.stream('billing');
    const { config } = await env.rt.nats.jsm.streams.info(name);
    await env.rt.nats.jsm.streams.update(name, { ...config, allow_direct: false });
    const third = await migrate({ ...env.rt, replicas: 1 });
    expect(third.streams.find((s) => s.name === name)).toEqual({ name, action: 'updated', changed: ['allow_direct'] });
    expect((await env.rt.nats.jsm.streams.info(name)).config.allow_direct).toBe(true);
  });
});
