/**
 * The projector runtime against real NATS JetStream and Postgres: the read
 * model is a fold of the log, read-your-writes waits for the checkpoint, an
 * event that cannot be decoded or applied stops the projector exactly there
 * (recorded, metered, nothing after it applied), and of two instances only one
 * applies while the other stands by and takes over.
 */
import { Kvm } from '@nats-io/kv';
import type { schema as avroSchema } from 'avsc';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { catalogueRegistry } from '../../contracts/catalogue.js';
import { fingerprintHex, fingerprintOf, type SchemaRegistry } from '../../contracts/codec.js';
import { avroType } from '../../contracts/avro-types.js';
import { HEADER, type EventMeta, type StoredEvent } from '../../contracts/envelope.js';
import { uuidv7 } from '../../contracts/ids.js';
import { projectorDeps, startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { readLog } from '../support/log.js';
import { openRuntime, type Runtime } from '../../infra/runtime.js';
import { fetchSchema, type SchemaDocument } from '../../infra/streams/schema-bucket.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { openText } from '../../producers/identity/crypto/person-keys.js';
import { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import type { Projection } from '../../projectors/runtime/projection.js';
import { Projector } from '../../projectors/runtime/projector.js';
import type { UserTable } from '../../schema/database.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { testUsers, type TestUsers } from '../support/users.js';

const META: EventMeta = { source: 'relaygrid/test' };

// ---------------------------------------------------------------------------
// helpers

/** One sample of a metric with a `projector` label, as Prometheus would scrape it. */
async function metric(rt: Runtime, name: string, projector: string): Promise<number | undefined> {
  const text = await rt.metrics.registry.metrics();
  const prefix = `${name}{projector="${projector}"} `;
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

async function checkpointRow(rt: Runtime, projector: string): Promise<{ seq: number; event_id: string | null } | undefined> {
  return rt.db.selectFrom('projector_checkpoints').select(['seq', 'event_id']).where('projector', '=', projector).executeTakeFirst();
}

async function checkpointOf(rt: Runtime, projector: string): Promise<number> {
  return (await checkpointRow(rt, projector))?.seq ?? 0;
}

/** The columns of `users` these tests compare with the log. */
type UserRow = Pick<UserTable, 'id' | 'email' | 'display_name' | 'status' | 'registered_at' | 'last_seq'>;

/**
 * The `users` read model as the log says it must be: last UserRegistered per user wins,
 * its sealed email and display name opened with the person's key (none for a legacy event).
 */
async function foldUsersLog(rt: Runtime, events: readonly StoredEvent[]): Promise<UserRow[]> {
  const registrations = events.flatMap((e) => (e.type === 'identity.UserRegistered' ? [{ data: e.data, seq: e.seq }] : []));
  const keys = await testUsers(rt).keys.getMany(registrations.map((r) => r.data.userId));
  const rows = new Map<string, UserRow>();
  for (const { data, seq } of registrations) {
    const key = keys.get(data.userId);
    rows.set(data.userId, {
      id: data.userId,
      email: openText(key, data.userId, data.emailSealed),
      display_name: openText(key, data.userId, data.displayNameSealed),
      status: 'active',
      registered_at: data.registeredAt,
      last_seq: seq,
    });
  }
  return [...rows.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

async function usersTable(rt: Runtime): Promise<UserRow[]> {
  return rt.db.selectFrom('users').select(['id', 'email', 'display_name', 'status', 'registered_at', 'last_seq']).orderBy('id').execute();
}

/** CloudEvents headers as a producer would write them, for hand-made messages. */
function ceHeaders(id: string, ceType: string, fingerprint: string, aggregateId: string) {
  const h = natsHeaders();
  h.set(HEADER.specVersion, '1.0');
  h.set(HEADER.id, id);
  h.set(HEADER.type, ceType);
  h.set(HEADER.source, META.source);
  h.set(HEADER.time, new Date().toISOString());
  h.set(HEADER.subject, aggregateId);
  h.set(HEADER.dataSchema, fingerprint);
  h.set(HEADER.contentType, 'avro/binary');
  return h;
}

/** Publishes a raw message on a fresh aggregate subject; returns its stream sequence. */
async function publishRaw(rt: Runtime, aggregate: string, body: Uint8Array, ceType: string, fingerprint: string): Promise<{ id: string; seq: number }> {
  const id = uuidv7();
  const subject = rt.names.aggregate('identity', aggregate, id);
  const ack = await rt.nats.js.publish(subject, body, { msgID: id, expect: { lastSubjectSequence: 0 }, headers: ceHeaders(id, ceType, fingerprint, id) });
  return { id, seq: ack.seq };
}

/** The CloudEvents type this process writes UserRegistered with (the current version). */
const USER_REGISTERED_V3 = 'relaygrid.identity.UserRegistered.v3';

/** Appends one (sealed) UserRegistered on `<ns>.evt.identity.<aggregate>.<new id>`; returns the event id and sequence. */
async function appendProbe(users: TestUsers, store: EventStore, aggregate: string): Promise<{ id: string; seq: number }> {
  const userId = uuidv7();
  const result = await store.append(store.names.aggregate('identity', aggregate, userId), [await users.registered(userId, `${userId}@probe.test`)], {
    expectedSeq: 0,
    meta: META,
  });
  return { id: result.ids[0] ?? '', seq: result.seq };
}

/** A test projection over `<ns>.evt.identity.<aggregate>.>` recording every applied event in `probe_applied`. */
function probeProjection(name: string, aggregate: string, refuse: (event: StoredEvent) => boolean, batches?: number[]): Projection {
  return {
    name,
    context: 'identity',
    tables: [],
    filter: (names) => names.aggregateSubjects('identity', aggregate),
    async apply(trx, events) {
      batches?.push(events.length);
      for (const event of events) {
        if (refuse(event)) throw new Error(`refusing to apply event ${event.id}`);
        await sql`insert into probe_applied (projector, event_id, seq) values (${name}, ${event.id}, ${event.seq})`.execute(trx);
      }
    },
  };
}

async function probeApplied(rt: Runtime, projector: string): Promise<string[]> {
  const { rows } = await sql<{ event_id: string }>`select event_id from probe_applied where projector = ${projector} order by seq`.execute(rt.db);
  return rows.map((r) => r.event_id);
}

function projectorFor(rt: Runtime, projection: Projection, extra: { registry?: SchemaRegistry; schemaLookup?: (fp: string) => Promise<SchemaDocument | undefined> } = {}): Projector {
  return new Projector({ ...projectorDeps(rt), projection, batchSize: 100, ...extra });
}

async function openFailures(rt: Runtime, projector: string) {
  return rt.db.selectFrom('projector_failures').selectAll().where('projector', '=', projector).where('resolved_at', 'is', null).execute();
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------

describe('users projector: the read model is a fold of the log', () => {
  let env: Isolated;
  let handler: CommandHandler;
  let people: TestUsers;
  let running: RunningProjectors | undefined;
  let watcher: CheckpointWatcher | undefined;

  beforeAll(async () => {
    env = await isolated();
    handler = new CommandHandler(new EventStore(env.rt.nats, env.rt.names, env.rt.registry));
    people = testUsers(env.rt);
  });

  afterAll(async () => {
    await watcher?.close();
    await running?.close();
    await env?.cleanup();
  });

  it('applies every event of the users subjects, commits included, and checkpoints the last one', async () => {
    const { rt } = env;
    const store = handler.store;
    const registered: { userId: string; seq: number; email: string; displayName: string | null }[] = [];
    for (let i = 0; i < 12; i++) {
      const email = `fold-${i}@example.test`;
      const displayName = i % 3 === 0 ? `User ${i}` : null;
      const r = await people.register(handler, { email, displayName }, META);
      registered.push({ ...r, email, displayName });
    }

    // A decision of two events in one message: the second one must win the fold.
    const commitUser = uuidv7();
    const commit = await store.append(
      rt.names.aggregate('identity', 'user', commitUser),
      [await people.registered(commitUser, 'commit-first@example.test'), await people.registered(commitUser, 'commit-second@example.test', 'Second')],
      { expectedSeq: 0, meta: META },
    );
    expect(commit.ids).toHaveLength(2);

    // An event written by an older producer with UserRegistered v1. v3 stops reading plaintext personal
    // data: its plaintext email is not read any more, so it projects with email = null and display_name = null.
    const v1 = rt.registry.all().find((s) => s.key === 'identity.UserRegistered' && s.version === 1);
    if (!v1) throw new Error('UserRegistered v1 is not in the catalogue');
    const legacyUser = uuidv7();
    const legacyAck = await rt.nats.js.publish(
      rt.names.aggregate('identity', 'user', legacyUser),
      v1.type.toBuffer({ userId: legacyUser, email: 'legacy@example.test', registeredAt: new Date('2024-01-02T03:04:05.678Z') }),
      { msgID: legacyUser, expect: { lastSubjectSequence: 0 }, headers: ceHeaders(legacyUser, v1.ceType, v1.fingerprint, legacyUser) },
    );

    for (let i = 12; i < 20; i++) {
      const email = `fold-${i}@example.test`;
      registered.push({ ...(await people.register(handler, { email }, META)), email, displayName: null });
    }
    // The stream ends with a message outside the projector's filter.
    const tailHash = people.emails.of('tail@example.test');
    await store.append(rt.names.aggregate('identity', 'email', tailHash), [{ type: 'identity.EmailReserved', data: { emailHash: tailHash, userId: uuidv7(), reservedAt: new Date() } }], {
      expectedSeq: 0,
      meta: META,
    });

    const lastUserSeq = Math.max(...registered.map((r) => r.seq), commit.seq, legacyAck.seq);
    const streamLast = (await rt.nats.jsm.streams.info(rt.names.stream('identity'))).state.last_seq;
    expect(streamLast).toBeGreaterThan(lastUserSeq);

    // Small batches, so the run spans several transactions.
    running = startProjectors(rt, ['users'], 4);
    const projector = running.projectors[0];
    if (!projector) throw new Error('no users projector');
    await eventually(async () => (await checkpointOf(rt, 'users')) === lastUserSeq, 15_000);

    const log = await readLog(rt, rt.names.aggregateSubjects('identity', 'user'));
    expect(log).toHaveLength(registered.length + 3); // + the two events of the commit + the legacy event
    const table = await usersTable(rt);
    expect(table).toEqual(await foldUsersLog(rt, log));

    // And against what was written, independently of any decoding.
    expect(table).toHaveLength(registered.length + 2);
    const byId = new Map(table.map((r) => [r.id, r]));
    for (const r of registered) {
      expect(byId.get(r.userId)).toMatchObject({ email: r.email, display_name: r.displayName, status: 'active', last_seq: r.seq });
    }
    expect(byId.get(commitUser)).toMatchObject({ email: 'commit-second@example.test', display_name: 'Second', last_seq: commit.seq });
    expect(byId.get(legacyUser)).toMatchObject({
      email: null,
      display_name: null,
      registered_at: new Date('2024-01-02T03:04:05.678Z'),
      last_seq: legacyAck.seq,
    });

    const cp = await checkpointRow(rt, 'users');
    expect(cp).toEqual({ seq: lastUserSeq, event_id: log.at(-1)?.id });
    expect(projector.status()).toMatchObject({ name: 'users', state: 'running', checkpoint: lastUserSeq, lag: 0 });
    expect(await metric(rt, 'relaygrid_projector_checkpoint_sequence', 'users')).toBe(lastUserSeq);
    expect(await metric(rt, 'relaygrid_projector_active', 'users')).toBe(1);
    expect(await metric(rt, 'relaygrid_projector_lag_events', 'users')).toBe(0);
    // Counts applications: a batch applied twice in this process would show here.
    expect(await metric(rt, 'relaygrid_projector_events_total', 'users')).toBe(log.length);
  });

  it('read-your-writes: waitFor resolves once the projector has applied the sequence, and times out while it is not running', async () => {
    const { rt } = env;
    if (!running) throw new Error('the previous test left no projector running');
    watcher = new CheckpointWatcher(rt.config.databaseUrl, rt.db);

    const first = await people.register(handler, { email: 'ryw-1@example.test' }, META);
    expect(await watcher.waitFor('users', first.seq, 10_000)).toBe(true);
    // The row is readable as soon as the wait says so.
    expect(await rt.db.selectFrom('users').select('last_seq').where('id', '=', first.userId).executeTakeFirst()).toEqual({ last_seq: first.seq });

    await running.close();
    running = undefined;

    const second = await people.register(handler, { email: 'ryw-2@example.test' }, META);
    const started = Date.now();
    expect(await watcher.waitFor('users', second.seq, 800)).toBe(false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(750);
    expect(await rt.db.selectFrom('users').select('id').where('id', '=', second.userId).executeTakeFirst()).toBeUndefined();

    // A waiter that is already waiting when the projector comes back is woken by it.
    let settled = false;
    const waiting = watcher.waitFor('users', second.seq, 15_000).then((reached) => {
      settled = true;
      return reached;
    });
    await sleep(400);
    expect(settled).toBe(false);
    running = startProjectors(rt, ['users']);
    expect(await waiting).toBe(true);
    expect(await rt.db.selectFrom('users').select('last_seq').where('id', '=', second.userId).executeTakeFirst()).toEqual({ last_seq: second.seq });
  });
});

describe('an event that cannot be decoded or applied stops the projector exactly there', () => {
  let env: Isolated;
  let handler: CommandHandler;
  let people: TestUsers;
  const toClose: { close(): Promise<void> }[] = [];

  beforeAll(async () => {
    env = await isolated();
    handler = new CommandHandler(new EventStore(env.rt.nats, env.rt.names, env.rt.registry));
    people = testUsers(env.rt);
    await sql`create table probe_applied (projector text not null, event_id text not null, seq bigint not null, primary key (projector, event_id))`.execute(env.rt.db);
  });

  afterAll(async () => {
    for (const p of toClose.reverse()) await p.close();
    await env?.cleanup();
  });

  /** Runs a Projector built in the test; close() also waits for its loop to end. */
  function run(projector: Projector): void {
    const loop = projector.run();
    toClose.push({
      close: async () => {
        await projector.close();
        await loop;
      },
    });
  }

  it('an undecodable users event: what precedes it is applied, it is recorded and metered, nothing after it is applied', async () => {
    const { rt } = env;
    const before: { userId: string; seq: number }[] = [];
    for (let i = 0; i < 4; i++) before.push(await people.register(handler, { email: `before-${i}@example.test` }, META));
    const fingerprint = rt.registry.currentOf('identity.UserRegistered').fingerprint;
    const poison = await publishRaw(rt, 'user', Buffer.from('this is not avro at all'), USER_REGISTERED_V3, fingerprint);
    const after: { userId: string; seq: number }[] = [];
    for (let i = 0; i < 3; i++) after.push(await people.register(handler, { email: `after-${i}@example.test` }, META));

    let running = startProjectors(rt, ['users'], 100);
    toClose.push(running);
    const projector = running.projectors[0];
    if (!projector) throw new Error('no users projector');
    await eventually(() => Promise.resolve(projector.status().state === 'stopped'), 15_000);

    const lastGood = before.at(-1)?.seq ?? 0;
    const status = projector.status();
    expect(status.failure).toMatchObject({ seq: poison.seq, eventId: poison.id, eventType: USER_REGISTERED_V3 });
    expect(status.failure?.error).toBeTruthy();
    expect(status.checkpoint).toBe(lastGood);
    expect(await checkpointOf(rt, 'users')).toBe(lastGood);

    const expectUsersUnchanged = async () => {
      const table = await usersTable(rt);
      expect(table.map((r) => r.id).sort()).toEqual(before.map((r) => r.userId).sort());
      expect(table.map((r) => r.last_seq).sort((a, b) => a - b)).toEqual(before.map((r) => r.seq));
    };
    await expectUsersUnchanged();

    const failures = await openFailures(rt, 'users');
    expect(failures).toHaveLength(1);
    expect(failures[0]).toMatchObject({ stream: rt.names.stream('identity'), seq: poison.seq, event_id: poison.id, event_type: USER_REGISTERED_V3 });
    expect(failures[0]?.error).toContain(status.failure?.error);

    // What an operator alerts on.
    expect(await metric(rt, 'relaygrid_projector_stopped', 'users')).toBe(1);
    expect(await metric(rt, 'relaygrid_projector_checkpoint_sequence', 'users')).toBe(lastGood);
    // The lag counts what is not applied: at least the poison and the three users after it.
    expect(await metric(rt, 'relaygrid_projector_lag_events', 'users')).toBeDefined();
    await eventually(async () => ((await metric(rt, 'relaygrid_projector_lag_events', 'users')) ?? 0) >= after.length + 1, 8_000);
    expect(projector.status().lag).toBe(await metric(rt, 'relaygrid_projector_lag_events', 'users'));

    // It stays stopped: nothing after the poison is applied later on either.
    await sleep(1000);
    expect(projector.status().state).toBe('stopped');
    expect(await checkpointOf(rt, 'users')).toBe(lastGood);
    await expectUsersUnchanged();

    // A restart stops on the same event again, without a second open failure row.
    await running.close();
    running = startProjectors(rt, ['users'], 100);
    toClose.push(running);
    const again = running.projectors[0];
    if (!again) throw new Error('no users projector');
    await eventually(() => Promise.resolve(again.status().state === 'stopped'), 15_000);
    expect(again.status().failure?.seq).toBe(poison.seq);
    expect(await openFailures(rt, 'users')).toHaveLength(1);
    await expectUsersUnchanged();
    await running.close();
  });

  it('an unknown ce-dataschema that the schema bucket does not know either stops the projector', async () => {
    const { rt } = env;
    const store = handler.store;
    const good = [await appendProbe(people, store, 'schemaprobe'), await appendProbe(people, store, 'schemaprobe')];
    const v3 = rt.registry.currentOf('identity.UserRegistered');
    const unknownPrint = `sha256:${'ab'.repeat(32)}`;
    const userId = uuidv7();
    const unknown = await publishRaw(
      rt,
      'schemaprobe',
      v3.type.toBuffer((await people.registered(userId, 'x@probe.test')).data),
      'relaygrid.identity.UserRegistered.v9',
      unknownPrint,
    );
    const later = await appendProbe(people, store, 'schemaprobe');

    const kv = await new Kvm(rt.nats.js).open(rt.names.schemaBucket);
    const lookups: string[] = [];
    const projector = projectorFor(rt, probeProjection('probe-schema', 'schemaprobe', () => false), {
      schemaLookup: (fp) => {
        lookups.push(fp);
        return fetchSchema(kv, fp);
      },
    });
    run(projector);
    await eventually(() => Promise.resolve(projector.status().state === 'stopped'), 15_000);

    expect(lookups).toContain(unknownPrint);
    expect(projector.status().failure).toMatchObject({ seq: unknown.seq, eventId: unknown.id });
    expect(projector.status().failure?.error).toContain(unknownPrint);
    expect(await probeApplied(rt, 'probe-schema')).toEqual(good.map((g) => g.id));
    expect(await probeApplied(rt, 'probe-schema')).not.toContain(later.id);
    expect(await checkpointOf(rt, 'probe-schema')).toBe(good.at(-1)?.seq);
    expect(await openFailures(rt, 'probe-schema')).toMatchObject([{ seq: unknown.seq, event_id: unknown.id }]);
    expect(await metric(rt, 'relaygrid_projector_stopped', 'probe-schema')).toBe(1);
  });

  it('a newer writer schema found in the schema bucket is learned and applied, without changing what this process writes', async () => {
    const { rt } = env;
    const store = handler.store;
    // A fresh registry: learning must not leak into the other tests of this file.
    const registry = catalogueRegistry();
    const v3 = registry.currentOf('identity.UserRegistered');
    const v3Record = v3.schema as avroSchema.RecordType;
    const v4Schema: avroSchema.RecordType = { ...v3Record, doc: 'v4 adds a locale', fields: [...v3Record.fields, { name: 'locale', type: 'string', default: 'und' }] };
    const v4Type = avroType(v4Schema);
    const v4Print = fingerprintOf(v4Type);
    const kv = await new Kvm(rt.nats.js).open(rt.names.schemaBucket);
    await kv.put(fingerprintHex(v4Print), JSON.stringify({ type: 'relaygrid.identity.UserRegistered.v4', version: 4, schema: v4Schema }));

    const first = await appendProbe(people, store, 'learnprobe');
    const userId = uuidv7();
    const newerEvent = await people.registered(userId, 'newer@probe.test');
    const newer = await publishRaw(rt, 'learnprobe', v4Type.toBuffer({ ...newerEvent.data, locale: 'fr' }), 'relaygrid.identity.UserRegistered.v4', v4Print);
    const last = await appendProbe(people, store, 'learnprobe');

    const seen: StoredEvent[] = [];
    const projection = probeProjection('probe-learn', 'learnprobe', (e) => {
      seen.push(e);
      return false;
    });
    const projector = projectorFor(rt, projection, { registry, schemaLookup: (fp) => fetchSchema(kv, fp) });
    run(projector);
    await eventually(async () => (await checkpointOf(rt, 'probe-learn')) === last.seq || projector.status().state === 'stopped', 15_000);

    expect(projector.status().failure).toBeUndefined();
    expect(await probeApplied(rt, 'probe-learn')).toEqual([first.id, newer.id, last.id]);
    const learned = seen.find((e) => e.id === newer.id);
    expect(learned?.data).toMatchObject({ userId, emailHash: people.emails.of('newer@probe.test') });
    // Read as the current v3: the sealed email written by the v4 writer still opens with the person's key.
    const sealedEmail = learned?.type === 'identity.UserRegistered' ? learned.data.emailSealed : null;
    expect(openText(await people.keys.get(userId), userId, sealedEmail)).toBe('newer@probe.test');
    // This process ships UserRegistered v3: its producers must keep writing v3 after its projector decoded a v4.
    expect(registry.currentOf('identity.UserRegistered').version).toBe(3);
    expect(registry.encode('identity.UserRegistered', (await people.registered(uuidv7(), 'w@probe.test')).data).ceType).toBe(USER_REGISTERED_V3);
  });

  it('an event that decodes but fails to apply is located inside its batch: those before it are applied, it is recorded', async () => {
    const { rt } = env;
    const store = handler.store;
    const events: { id: string; seq: number }[] = [];
    for (let i = 0; i < 10; i++) events.push(await appendProbe(people, store, 'applyprobe'));
    const bad = events[5];
    if (!bad) throw new Error('no bad event');

    const batches: number[] = [];
    const projector = projectorFor(rt, probeProjection('probe-apply', 'applyprobe', (e) => e.id === bad.id, batches));
    run(projector);
    await eventually(() => Promise.resolve(projector.status().state === 'stopped'), 15_000);

    // All ten arrived as one batch, which failed as a whole and was then bisected.
    expect(batches[0]).toBe(10);
    expect(projector.status().failure).toMatchObject({ seq: bad.seq, eventId: bad.id, eventType: USER_REGISTERED_V3 });
    expect(projector.status().failure?.error).toContain(`refusing to apply event ${bad.id}`);
    expect(await probeApplied(rt, 'probe-apply')).toEqual(events.slice(0, 5).map((e) => e.id));
    expect(await checkpointOf(rt, 'probe-apply')).toBe(events[4]?.seq);
    const failures = await openFailures(rt, 'probe-apply');
    expect(failures).toMatchObject([{ seq: bad.seq, event_id: bad.id, event_type: USER_REGISTERED_V3 }]);
    expect(failures[0]?.error).toContain(`refusing to apply event ${bad.id}`);
    expect(await metric(rt, 'relaygrid_projector_stopped', 'probe-apply')).toBe(1);

    await sleep(1000);
    expect(await probeApplied(rt, 'probe-apply')).toHaveLength(5);
  });

  it('an event that fails to apply ahead of an undecodable one in the same batch is the one recorded', async () => {
    const { rt } = env;
    const store = handler.store;
    const g1 = await appendProbe(people, store, 'mixprobe');
    const g2 = await appendProbe(people, store, 'mixprobe');
    const bad = await appendProbe(people, store, 'mixprobe');
    const g3 = await appendProbe(people, store, 'mixprobe');
    const fingerprint = rt.registry.currentOf('identity.UserRegistered').fingerprint;
    await publishRaw(rt, 'mixprobe', Buffer.from('garbage'), USER_REGISTERED_V3, fingerprint);
    await appendProbe(people, store, 'mixprobe');

    const projector = projectorFor(rt, probeProjection('probe-mix', 'mixprobe', (e) => e.id === bad.id));
    run(projector);
    await eventually(() => Promise.resolve(projector.status().state === 'stopped'), 10_000);

    expect(projector.status().failure).toMatchObject({ seq: bad.seq, eventId: bad.id });
    expect(await probeApplied(rt, 'probe-mix')).toEqual([g1.id, g2.id]);
    expect(await probeApplied(rt, 'probe-mix')).not.toContain(g3.id);
    expect(await checkpointOf(rt, 'probe-mix')).toBe(g2.seq);
    expect(await openFailures(rt, 'probe-mix')).toMatchObject([{ seq: bad.seq, event_id: bad.id }]);
  });
});

describe('one active instance per projector', () => {
  let env: Isolated;
  let handler: CommandHandler;
  let people: TestUsers;
  const runtimes: Runtime[] = [];
  const instances: RunningProjectors[] = [];

  beforeAll(async () => {
    env = await isolated();
    handler = new CommandHandler(new EventStore(env.rt.nats, env.rt.names, env.rt.registry));
    people = testUsers(env.rt);
    // Every row the projector writes is logged: each user has one event, so one log row per user, exactly.
    await sql`create table applied_log (id bigserial primary key, user_id text not null, last_seq bigint not null)`.execute(env.rt.db);
    await sql`create function log_applied() returns trigger language plpgsql as $$ begin insert into applied_log (user_id, last_seq) values (new.id, new.last_seq); return new; end $$`.execute(env.rt.db);
    await sql`create trigger users_applied after insert or update on users for each row execute function log_applied()`.execute(env.rt.db);
  });

  afterAll(async () => {
    for (const p of instances) await p.close();
    for (const r of runtimes) await r.close();
    await env?.cleanup();
  });

  it('two instances: one runs, one stands by, and takes over when the first goes away, applying nothing twice', async () => {
    const { rt } = env;
    for (let i = 0; i < 2; i++) runtimes.push(await openRuntime(env.config, 'test'));
    const [rtA, rtB] = runtimes as [Runtime, Runtime];
    const a = startProjectors(rtA, ['users'], 5);
    instances.push(a);
    const b = startProjectors(rtB, ['users'], 5);
    instances.push(b);
    const pa = a.projectors[0];
    const pb = b.projectors[0];
    if (!pa || !pb) throw new Error('no users projector');

    const users: { userId: string; seq: number }[] = [];
    for (let i = 0; i < 15; i++) users.push(await people.register(handler, { email: `ha-${i}@example.test` }, META));
    await eventually(async () => (await checkpointOf(rt, 'users')) === users.at(-1)?.seq, 15_000);
    await eventually(() => Promise.resolve([pa.status().state, pb.status().state].sort().join() === 'running,standby'), 5_000);

    // Through several standby polls, never two running at once.
    for (let i = 0; i < 25; i++) {
      expect([pa.status().state, pb.status().state].sort()).toEqual(['running', 'standby']);
      await sleep(100);
    }
    const [active, standby, activeRt, standbyRt] = pa.status().state === 'running' ? [a, b, rtA, rtB] : [b, a, rtB, rtA];
    expect(await metric(activeRt, 'relaygrid_projector_active', 'users')).toBe(1);
    expect(await metric(standbyRt, 'relaygrid_projector_active', 'users')).toBe(0);
    expect((await metric(standbyRt, 'relaygrid_projector_events_total', 'users')) ?? 0).toBe(0);

    // The active instance goes away (process exit); users keep registering meanwhile.
    const closing = (async () => {
      await active.close();
      await activeRt.close();
    })();
    for (let i = 15; i < 30; i++) users.push(await people.register(handler, { email: `ha-${i}@example.test` }, META));
    await closing;
    const taker = standby.projectors[0];
    if (!taker) throw new Error('no users projector');
    await eventually(() => Promise.resolve(taker.status().state === 'running'), 5_000);
    await eventually(async () => (await checkpointOf(rt, 'users')) === users.at(-1)?.seq, 15_000);

    const table = await usersTable(rt);
    expect(table).toHaveLength(users.length);
    expect(table).toEqual(await foldUsersLog(rt, await readLog(rt, rt.names.aggregateSubjects('identity', 'user'))));
    const { rows } = await sql<{ rows: number; users: number }>`select count(*)::int as rows, count(distinct user_id)::int as users from applied_log`.execute(rt.db);
    expect(rows[0]).toEqual({ rows: users.length, users: users.length });
    const appliedByBoth =
      ((await metric(activeRt, 'relaygrid_projector_events_total', 'users')) ?? 0) + ((await metric(standbyRt, 'relaygrid_projector_events_total', 'users')) ?? 0);
    expect(appliedByBoth).toBe(users.length);
    expect(await metric(standbyRt, 'relaygrid_projector_active', 'users')).toBe(1);
  });
});
