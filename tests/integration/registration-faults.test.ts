/**
 * A registration that fails part-way leaves its address usable by the very
 * next attempt, and the log consistent: no UserRegistered without its key, no
 * two users for one address. Faults come from the real services: Postgres
 * refusing the key, JetStream refusing an append, a `relaygrid users
 * create-admin` process killed between its steps.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../contracts/envelope.js';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { normaliseEmail } from '../../producers/identity/email.js';
import { ownerOfEmail } from '../../producers/identity/register-user.js';
import { CLI, runCli, sandboxEnv } from '../support/cli.js';
import { client } from '../support/http.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { readLog } from '../support/log.js';

const PASSWORD = 'correct horse battery';

describe('a registration that fails part-way', () => {
  let env: Isolated;
  let api: RunningApi;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    env = await isolated({ env: { RG_TRUST_PROXY: 'true', RG_REGISTER_LIMIT_PER_IP: '10000' } });
    api = await startApi(env.rt, { host: '127.0.0.1' });
    call = client(api.url);
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const hashOf = (email: string) => api.identity.deps.emails.of(normaliseEmail(email));
  const register = (email: string) => call<{ id: string; code?: string }>('POST', '/v1/auth/register', { body: { email, password: PASSWORD } });
  const createAdmin = (email: string) => runCli(env.config, ['users', 'create-admin', '--email', email]);
  const createdId = (stdout: string) => /created admin (\S+)/.exec(stdout)?.[1];

  /** Every user event of the namespace (there is always one: each test registers someone first). */
  const userEvents = () => readLog(env.rt, env.rt.names.aggregateSubjects('identity', 'user'));

  /**
   * What a person or an auditor would check: exactly one UserRegistered for
   * the address, its key is in person_keys, the reservation names that user,
   * and every other user id that tried was closed.
   */
  async function expectOneUserFor(email: string, winner: string, stalled: readonly string[]): Promise<StoredEvent[]> {
    const events = await userEvents();
    const registered = events.filter((e) => e.type === 'identity.UserRegistered' && (e.data as { emailHash: string }).emailHash === hashOf(email));
    expect(registered.map((e) => (e.data as { userId: string }).userId)).toEqual([winner]);
    expect(await api.identity.deps.keys.get(winner)).toBeDefined();
    expect(await ownerOfEmail(api.identity.deps.handler, hashOf(email))).toBe(winner);
    for (const id of stalled) {
      expect(events.filter((e) => (e.data as { userId?: string }).userId === id).map((e) => e.type)).toEqual(['identity.UserRegistrationAbandoned']);
    }
    return events;
  }

  /** User ids that claimed the address, in order, from its reservation subject. */
  async function claimants(email: string): Promise<string[]> {
    const claims = await readLog(env.rt, env.rt.names.aggregate('identity', 'email', hashOf(email)));
    return claims.filter((e) => e.type === 'identity.EmailReserved').map((e) => (e.data as { userId: string }).userId);
  }

  /** Makes a stream stop storing some of its subjects for the duration of `fn`: JetStream then answers "no responders". */
  async function withStreamSubjects(stream: string, subjects: string[], fn: () => Promise<void>): Promise<void> {
    const { config } = await env.rt.nats.jsm.streams.info(stream);
    await env.rt.nats.jsm.streams.update(stream, { ...config, subjects });
    try {
      await fn();
    } finally {
      await env.rt.nats.jsm.streams.update(stream, config);
    }
  }

  it('Postgres refusing the key: the API answers 500, and the next registration of the address succeeds at once', async () => {
    expect((await register('first@example.org')).status).toBe(201);
    const email = 'pg-refuses@example.org';
    await env.rt.pool.query(`create function rg_test_refuse() returns trigger language plpgsql as $$ begin raise exception 'refused by the test'; end $$`);
    await env.rt.pool.query('create trigger rg_test_refuse before insert on person_keys for each statement execute function rg_test_refuse()');
    let refused;
    try {
      refused = await register(email);
    } finally {
      await env.rt.pool.query('drop trigger rg_test_refuse on person_keys; drop function rg_test_refuse()');
    }
    expect(refused.status).toBe(500);
    const [stalled] = await claimants(email);

    const next = await register(email);
    expect(next.status, JSON.stringify(next.body)).toBe(201);
    await expectOneUserFor(email, next.body.id, [stalled!]);
    // The failed attempt gave the address back itself, so the next one found it free.
    const claims = await readLog(env.rt, env.rt.names.aggregate('identity', 'email', hashOf(email)));
    expect(claims.map((e) => e.type)).toEqual(['identity.EmailReserved', 'identity.EmailReleased', 'identity.EmailReserved']);
    expect((await register(email)).body).toMatchObject({ code: 'email_taken' });
  });

  it('JetStream refusing the user append (and the clean-up): the CLI fails, and the next create-admin takes the address over', async () => {
    const email = 'nats-refuses@example.org';
    const prefix = env.rt.names.prefix;
    let failed: Awaited<ReturnType<typeof createAdmin>> | undefined;
    await withStreamSubjects(env.rt.names.guardStream, [`${prefix}.guard.identity.email.>`], async () => {
      failed = await createAdmin(email);
    });
    expect(failed?.code).not.toBe(0);
    const [stalled] = await claimants(email);
    expect(stalled).toBeDefined();

    const next = await createAdmin(email);
    expect(next.code, next.stderr).toBe(0);
    const winner = createdId(next.stdout)!;
    await expectOneUserFor(email, winner, [stalled!]);
    expect(await claimants(email)).toEqual([stalled, winner]);
    expect((await createAdmin(email)).stderr).toMatch(/email_taken/);
  });

  it('JetStream storing the claim but refusing the event: the registration counts, and the address stays with it', async () => {
    const email = 'claimed-not-stored@example.org';
    const prefix = env.rt.names.prefix;
    const identityStream = env.rt.names.stream('identity');
    const before = (await env.rt.nats.jsm.streams.info(identityStream)).config.subjects ?? [];
    let failed: Awaited<ReturnType<typeof register>> | undefined;
    await withStreamSubjects(identityStream, [...before.filter((s) => !s.startsWith(`${prefix}.evt.identity`)), `${prefix}.evt.identity.email.>`], async () => {
      failed = await register(email);
    });
    expect(failed?.status).toBe(500);
    const [claimed] = await claimants(email);

    // The next attempt finds the stalled claim, closing it stores the registration its guard held: the address is taken, by a real user with a key.
    expect((await register(email)).body).toMatchObject({ code: 'email_taken' });
    await expectOneUserFor(email, claimed!, []);
    expect((await call('POST', '/v1/auth/login', { body: { email, password: PASSWORD } })).status).toBe(200);
  });

  it('create-admin killed between claiming the address and storing the key: a fresh process succeeds at once', async () => {
    const email = 'killed@example.org';
    // Hold the keyring so the child stops right after its claim, then kill it there.
    const holder = await env.rt.pool.connect();
    let stalled: string | null = null;
    try {
      await holder.query('begin');
      await holder.query('lock table person_keys in exclusive mode');
      const child = spawn(process.execPath, [CLI, 'users', 'create-admin', '--email', email], { env: sandboxEnv(env.config), stdio: 'ignore' });
      const exited = new Promise((resolve) => child.once('exit', resolve));
      stalled = await eventually(() => ownerOfEmail(api.identity.deps.handler, hashOf(email)), 20_000);
      await eventually(async () => {
        const { rowCount } = await env.rt.pool.query(`select 1 from pg_stat_activity where wait_event_type = 'Lock' and query ilike 'insert into "person_keys"%'`);
        return rowCount === 1;
      });
      child.kill('SIGKILL');
      await exited;
    } finally {
      await holder.query('rollback');
      holder.release();
    }

    const next = await createAdmin(email);
    expect(next.code, next.stderr).toBe(0);
    await expectOneUserFor(email, createdId(next.stdout)!, [stalled]);
  });
});
