import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { ConcurrencyConflictError, WrongExpectedSequenceError } from '../../producers/event-store/errors.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { DomainError } from '../../producers/decider.js';
import { userDecider, type UserCommand } from '../../producers/identity/user.decider.js';
import type { DomainEvent } from '../../contracts/envelope.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { AppendGuard, type Publish } from '../../producers/event-store/append-guard.js';
import { encodeDecision } from '../../contracts/envelope.js';
import { testUsers } from '../support/users.js';

const meta = { source: 'relaygrid/test', actor: 'system:test' };
const at = new Date('2026-11-23T12:00:00Z');
// The store moves bytes: stand-ins for the sealed fields do (the email rides in emailHash, to tell events apart).
const sealed = (text: string) => Buffer.from(`sealed:${text}`);
const registered = (userId: string, email = `${userId}@example.org`): DomainEvent<'identity.UserRegistered'> => ({
  type: 'identity.UserRegistered',
  data: { userId, emailHash: email, emailSealed: sealed(email), displayNameSealed: null, passwordHashSealed: null, roles: ['client'], registeredAt: at },
});

describe('event store on JetStream', () => {
  let env: Isolated;
  let store: EventStore;

  beforeAll(async () => {
    env = await isolated();
    store = new EventStore(env.rt.nats, env.rt.names, env.rt.registry);
  });
  afterAll(() => env.cleanup());

  const subject = (id: string) => env.rt.names.aggregate('identity', 'user', id);

  it('appends to the aggregate subject with CloudEvents headers and reads it back', async () => {
    const id = uuidv7();
    const { seq, ids } = await store.append(subject(id), [registered(id)], { expectedSeq: 0, meta: { ...meta, correlationId: 'corr-1' } });
    const msg = await env.rt.nats.jsm.direct.getMessage(env.rt.names.stream('identity'), { seq });
    expect(msg?.subject).toBe(`${env.config.namespace}.evt.identity.user.${id}`);
    expect(msg?.header.get('Nats-Msg-Id')).toBe(ids[0]);
    expect(msg?.header.get('ce-id')).toBe(ids[0]);
    expect(msg?.header.get('ce-subject')).toBe(id);
    expect(msg?.header.get('ce-actor')).toBe('system:test');
    expect(msg?.header.get('ce-correlationid')).toBe('corr-1');
    const { events, lastSeq } = await store.read(subject(id));
    expect(lastSeq).toBe(seq);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ seq, id: ids[0], type: 'identity.UserRegistered', data: registered(id).data });
  });

  it('expectation 0 means the aggregate must not exist yet', async () => {
    const id = uuidv7();
    await store.append(subject(id), [registered(id)], { expectedSeq: 0, meta });
    await expect(store.append(subject(id), [registered(id)], { expectedSeq: 0, meta })).rejects.toBeInstanceOf(WrongExpectedSequenceError);
    expect((await store.read(subject(id))).events).toHaveLength(1);
  });

  it('a retried append with the same event id is a duplicate, not a second event', async () => {
    const id = uuidv7();
    const ids = [uuidv7()];
    const first = await store.append(subject(id), [registered(id)], { expectedSeq: 0, meta, ids });
    const retry = await store.append(subject(id), [registered(id)], { expectedSeq: 0, meta, ids });
    expect(retry).toEqual({ seq: first.seq, duplicate: true, ids });
    expect((await store.read(subject(id))).events).toHaveLength(1);
  });

  it('several events of one decision land in one message, in order', async () => {
    const id = uuidv7();
    const { seq } = await store.append(subject(id), [registered(id, 'first@example.org'), registered(id, 'second@example.org')], { expectedSeq: 0, meta });
    const { events } = await store.read(subject(id));
    expect(events.map((e) => [e.seq, e.type === 'identity.UserRegistered' && e.data.emailHash])).toEqual([
      [seq, 'first@example.org'],
      [seq, 'second@example.org'],
    ]);
  });

  it('reads only the aggregate subject, from a given sequence', async () => {
    const a = uuidv7();
    const b = uuidv7();
    const first = await store.append(subject(a), [registered(a)], { expectedSeq: 0, meta });
    await store.append(subject(b), [registered(b)], { expectedSeq: 0, meta });
    const second = await store.append(subject(a), [registered(a, 'new@example.org')], { expectedSeq: first.seq, meta });
    expect((await store.read(subject(a))).events.map((e) => e.seq)).toEqual([first.seq, second.seq]);
    expect((await store.read(subject(a), first.seq)).events.map((e) => e.seq)).toEqual([second.seq]);
    expect(await store.read(subject(uuidv7()))).toEqual({ events: [], lastSeq: 0 });
  });

  it('the command handler re-decides on a stale cache and answers the domain error', async () => {
    const handler = new CommandHandler(store);
    const other = new CommandHandler(store);
    const id = uuidv7();
    const command: UserCommand = {
      type: 'RegisterUser',
      userId: id,
      emailHash: 'x@example.org',
      emailSealed: sealed('x@example.org'),
      displayNameSealed: null,
      passwordHashSealed: null,
      roles: ['client'],
      credentialsSealed: sealed('credentials'),
      verification: { tokenHash: 'token', tokenSealed: sealed('token'), emailSealed: sealed('x@example.org'), expiresAt: at },
      at,
    };
    // `other` believes the aggregate is new; `handler` created it first.
    await handler.handle(userDecider, subject(id), command, { meta, assumeNew: true });
    await expect(other.handle(userDecider, subject(id), command, { meta, assumeNew: true })).rejects.toMatchObject({ code: 'user_exists' });
    expect(other.conflicts).toBe(1);
  });

  it('gives up with a typed conflict after a bounded number of attempts', async () => {
    const id = uuidv7();
    await store.append(subject(id), [registered(id)], { expectedSeq: 0, meta });
    // A decider that always emits: every attempt races a concurrent writer we simulate by appending in decide's wake.
    let writes = 0;
    const racing = {
      initialState: 0,
      evolve: (n: number) => n + 1,
      decide: () => [registered(id)],
    };
    const handler = new CommandHandler({
      ...store,
      names: store.names,
      read: (s: string, after?: number) => store.read(s, after),
      lastSequence: (s: string) => store.lastSequence(s),
      append: async (s: string, events: Parameters<EventStore['append']>[1], opts: Parameters<EventStore['append']>[2]) => {
        writes++;
        await store.append(s, [registered(id)], { expectedSeq: await store.lastSequence(s), meta });
        return store.append(s, events, opts);
      },
    } as unknown as EventStore);
    await expect(handler.handle(racing, subject(id), {}, { meta, maxAttempts: 3 })).rejects.toBeInstanceOf(ConcurrencyConflictError);
    expect(writes).toBe(3);
  });

  it('two concurrent registrations of the same email: exactly one succeeds', async () => {
    const users = testUsers(env.rt);
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, () => users.register(new CommandHandler(store), { email: 'Same@Example.org ' }, meta)),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(ok).toHaveLength(1);
    // Each refusal by its code (or its class and message), so a failure shows what else was thrown.
    const why = (err: unknown): string => (err instanceof DomainError ? err.code : `${(err as Error).name}: ${(err as Error).message}`);
    expect(failed.map((r) => why(r.reason))).toEqual(Array.from({ length: 7 }, () => 'email_taken'));
  });

  it('aggregates of two contexts appended in turn all reach the audit stream (expectations are not stored with the events)', async () => {
    const before = (await env.rt.nats.jsm.streams.info(env.rt.names.auditStream)).state.messages;
    const user = uuidv7();
    const other = env.rt.names.aggregate('messaging', 'contacts', uuidv7());
    const contact = (n: number): DomainEvent<'messaging.ContactAdded'> => ({ type: 'messaging.ContactAdded', data: { userId: 'u', contactId: `c${n}`, addedAt: at } });
    let userSeq = 0;
    let otherSeq = 0;
    for (let i = 0; i < 3; i++) {
      userSeq = (await store.append(subject(user), [registered(user)], { expectedSeq: userSeq, meta })).seq;
      otherSeq = (await store.append(other, [contact(i)], { expectedSeq: otherSeq, meta })).seq;
    }
    for (const stream of [env.rt.names.stream('identity'), env.rt.names.stream('messaging')]) {
      const stored = await env.rt.nats.jsm.direct.getMessage(stream, { last_by_subj: stream.endsWith('IDENTITY') ? subject(user) : other });
      expect(stored?.header.get('Nats-Expected-Last-Subject-Sequence')).toBe('');
    }
    await eventually(async () => (await env.rt.nats.jsm.streams.info(env.rt.names.auditStream)).state.messages === before + 6, 5000);
  });

  it('a writer that died after claiming the guard: the next writer stores its event first, then decides again', async () => {
    const id = uuidv7();
    const first = await store.append(subject(id), [registered(id, 'one@example.org')], { expectedSeq: 0, meta });
    // The dying writer: its claim is made, its event never published.
    const publish: Publish = (s, body, msgID, headers, expect) => env.rt.nats.js.publish(s, body, { msgID, headers, ...(expect ? { expect } : {}) });
    const dying = new AppendGuard(env.rt.nats, env.rt.names, publish);
    const lost = encodeDecision(env.rt.registry, id, [{ id: uuidv7(), event: registered(id, 'two@example.org'), time: at }], meta);
    await dying.claim(subject(id), first.seq, lost);
    expect((await store.read(subject(id))).events).toHaveLength(1);
    // Another process, expecting what it last read, learns it is stale, and the claimed event is now stored.
    const other = new EventStore(env.rt.nats, env.rt.names, env.rt.registry);
    await expect(other.append(subject(id), [registered(id, 'three@example.org')], { expectedSeq: first.seq, meta })).rejects.toBeInstanceOf(WrongExpectedSequenceError);
    const { events, lastSeq } = await other.read(subject(id));
    expect(events.map((e) => e.type === 'identity.UserRegistered' && e.data.emailHash)).toEqual(['one@example.org', 'two@example.org']);
    expect(events[1]?.id).toBe(lost.id);
    await other.append(subject(id), [registered(id, 'three@example.org')], { expectedSeq: lastSeq, meta });
    expect((await other.read(subject(id))).events).toHaveLength(3);
  });
});
