/**
 * "A projector killed with SIGKILL in the middle of a batch resumes without
 * applying any event twice and without skipping one: the read model equals a
 * fold of the log."
 *
 * The projector runs as the operator runs it (`relaygrid projector users`, a
 * child process) and is killed twice while a batch transaction is open. The
 * users upsert is idempotent, so a batch applied twice would leave the same
 * rows: a trigger logs every row the projector writes into `applied_log`, and
 * since every user has exactly one event, each user must appear there exactly
 * once (twice = applied twice, never = skipped). Rows written by transactions
 * the kill rolled back draw from a sequence (not transactional), which shows
 * that the kills did land mid-batch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import type { Runtime } from '../../infra/runtime.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { openText } from '../../producers/identity/crypto/person-keys.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { readLog } from '../support/log.js';
import { CLI, sandboxEnv } from '../support/cli.js';
import { testUsers } from '../support/users.js';

const USERS = 30_000;
const APPEND_WINDOW = 256;
const META = { source: 'relaygrid/test' };

interface Appended {
  userId: string;
  email: string;
  seq: number;
}

interface Child {
  proc: ChildProcess;
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const children = new Set<Child>();

function spawnProjector(env: Isolated): Child {
  const { config } = env;
  const proc = spawn(process.execPath, [CLI, 'projector', 'users'], {
    env: sandboxEnv(config),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const child: Child = { proc, output, exited };
  children.add(child);
  void exited.then(() => children.delete(child));
  return child;
}

function alive(child: Child): boolean {
  return child.proc.exitCode === null && child.proc.signalCode === null;
}

function describeChild(child: Child): string {
  return `exit ${String(child.proc.exitCode)} signal ${String(child.proc.signalCode)}; output:\n${child.output.join('').slice(-2000)}`;
}

async function checkpointOf(rt: Runtime): Promise<number> {
  const row = await rt.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', 'users').executeTakeFirst();
  return row?.seq ?? 0;
}

/**
 * Appends one sealed UserRegistered per new user (creating their key), APPEND_WINDOW at a time,
 * with an unrelated email reservation every 1000.
 */
async function fillStream(rt: Runtime, count: number): Promise<Appended[]> {
  const store = new EventStore(rt.nats, rt.names, rt.registry);
  const users = testUsers(rt);
  const out: Appended[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const userId = uuidv7();
      const email = `crash-${i}@example.test`;
      const registered = await users.registered(userId, email, i % 2 === 0 ? `Crash ${i}` : null);
      const registeredAt = registered.data.registeredAt;
      const { seq } = await store.append(rt.names.aggregate('identity', 'user', userId), [registered], { expectedSeq: 0, meta: META });
      out.push({ userId, email, seq });
      if (i % 1000 === 0) {
        const hash = users.emails.of(`other-${i}@example.test`);
        await store.append(rt.names.aggregate('identity', 'email', hash), [{ type: 'identity.EmailReserved', data: { emailHash: hash, userId, reservedAt: registeredAt } }], {
          expectedSeq: 0,
          meta: META,
        });
      }
    }
  };
  await Promise.all(Array.from({ length: APPEND_WINDOW }, worker));
  return out.sort((a, b) => a.seq - b.seq);
}


describe('a projector killed with SIGKILL mid-batch', () => {
  let env: Isolated;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` before the integration tests`);
    env = await isolated();
    const { db } = env.rt;
    await sql`create table applied_log (id bigserial primary key, user_id text not null, last_seq bigint not null)`.execute(db);
    await sql`create sequence applied_attempts`.execute(db);
    await sql`create function log_applied() returns trigger language plpgsql as $$
      begin
        perform nextval('applied_attempts');
        insert into applied_log (user_id, last_seq) values (new.id, new.last_seq);
        return new;
      end $$`.execute(db);
    await sql`create trigger users_applied after insert or update on users for each row execute function log_applied()`.execute(db);
  });

  afterAll(async () => {
    for (const child of children) {
      child.proc.kill('SIGKILL');
      await child.exited;
    }
    await env?.cleanup();
  });

  it('resumes without applying any event twice or skipping one: the read model equals a fold of the log', { timeout: 120_000 }, async () => {
    const { rt } = env;
    const appended = await fillStream(rt, USERS);
    const seqOf = new Map(appended.map((a) => [a.userId, a.seq]));
    const emailOf = new Map(appended.map((a) => [a.userId, a.email]));
    const userSeqs = new Set(appended.map((a) => a.seq));
    const lastUserSeq = appended.at(-1)?.seq ?? 0;
    expect(appended).toHaveLength(USERS);
    const streamLast = (await rt.nats.jsm.streams.info(rt.names.stream('identity'))).state.last_seq;
    expect(streamLast).toBe(USERS + Math.ceil(USERS / 1000));

    /** Rows the projector wrote, including those of transactions that were rolled back. */
    const attempts = async () => {
      const { rows } = await sql<{ n: number }>`select case when is_called then last_value else 0 end as n from applied_attempts`.execute(rt.db);
      return rows[0]?.n ?? 0;
    };

    /** What must hold whenever no projector is running: the read model is exactly the log up to the checkpoint. */
    const assertConsistent = async (): Promise<number> => {
      const checkpoint = await checkpointOf(rt);
      const rows = await rt.db.selectFrom('users').select(['id', 'last_seq']).execute();
      const wrong = rows.filter((r) => seqOf.get(r.id) !== r.last_seq || r.last_seq > checkpoint);
      expect(wrong.slice(0, 5)).toEqual([]);
      // Nothing up to the checkpoint is missing, nothing past it is there.
      expect(rows).toHaveLength(appended.filter((a) => a.seq <= checkpoint).length);
      if (checkpoint > 0) expect(userSeqs.has(checkpoint)).toBe(true);
      const { rows: log } = await sql<{ rows: number; users: number }>`select count(*)::int as rows, count(distinct user_id)::int as users from applied_log`.execute(rt.db);
      // Each user's one event was applied once: a second row for a user means a batch was applied twice.
      expect(log[0]).toEqual({ rows: rows.length, users: rows.length });
      return checkpoint;
    };

    /**
     * One snapshot (one statement): the checkpoint, the committed writes and whether a batch
     * transaction is open. Batch and checkpoint commit together, so a snapshot never sees
     * rows beyond the checkpoint or the checkpoint beyond the rows; any that does is kept.
     */
    const inconsistent: { seq: number; applied: number; expected: number }[] = [];
    const upTo = (seq: number) => {
      let lo = 0;
      let hi = appended.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if ((appended[mid]?.seq ?? Infinity) <= seq) lo = mid + 1;
        else hi = mid;
      }
      return lo;
    };
    const snapshot = async () => {
      const { rows } = await sql<{ seq: number | null; applied: number; writing: boolean }>`
        select (select seq from projector_checkpoints where projector = 'users') as seq,
               (select count(*)::int from applied_log) as applied,
               exists (select 1 from pg_stat_activity
                        where datname = current_database() and pid <> pg_backend_pid() and backend_xid is not null) as writing`.execute(rt.db);
      const seq = rows[0]?.seq ?? 0;
      const applied = rows[0]?.applied ?? 0;
      const consistent = applied === upTo(seq);
      if (!consistent) inconsistent.push({ seq, applied, expected: upTo(seq) });
      return { seq, writing: rows[0]?.writing ?? false, consistent };
    };

    /** Once the projector has applied past `atLeast`, SIGKILLs it while one of its batch transactions is open. */
    const killMidBatch = async (child: Child, atLeast: number): Promise<void> => {
      const deadline = Date.now() + 45_000;
      for (;;) {
        if (!alive(child)) throw new Error(`projector exited before it could be killed: ${describeChild(child)}`);
        const { seq, writing, consistent } = await snapshot();
        // Caught between a commit of rows and a commit of the checkpoint: the worst moment to die.
        if (!consistent) break;
        if (seq >= lastUserSeq) throw new Error(`projector caught up (checkpoint ${seq}) before it could be killed mid-stream`);
        if (seq >= atLeast && writing) break;
        if (Date.now() > deadline) throw new Error(`projector did not reach ${atLeast} (checkpoint ${seq}): ${describeChild(child)}`);
      }
      child.proc.kill('SIGKILL');
      expect(await child.exited).toEqual({ code: null, signal: 'SIGKILL' });
      // Wait for Postgres to notice: the open transaction is rolled back and the leader lock released.
      await eventually(async () => {
        const { rows } = await sql<{ n: number }>`
          select count(*)::int as n from pg_stat_activity
           where datname = current_database() and pid <> pg_backend_pid()
             and (backend_xid is not null or application_name like 'relaygrid-lock:%')`.execute(rt.db);
        return rows[0]?.n === 0;
      }, 10_000);
      expect(inconsistent).toEqual([]);
    };

    /** Rows written by transactions that never committed (the kills rolled them back). */
    const rolledBack = async () => {
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from applied_log`.execute(rt.db);
      return (await attempts()) - (rows[0]?.n ?? 0);
    };

    // First run: killed early, mid-batch.
    const first = spawnProjector(env);
    await killMidBatch(first, 1);
    const afterFirst = await assertConsistent();
    expect(afterFirst).toBeGreaterThan(0);
    expect(afterFirst).toBeLessThan(lastUserSeq);
    const rolledBackFirst = await rolledBack();

    // Second run: resumes from the checkpoint, killed again further on.
    const second = spawnProjector(env);
    await killMidBatch(second, Math.max(afterFirst + 1, Math.floor(lastUserSeq * 0.55)));
    const afterSecond = await assertConsistent();
    expect(afterSecond).toBeGreaterThan(afterFirst);
    expect(afterSecond).toBeLessThan(lastUserSeq);
    const rolledBackSecond = (await rolledBack()) - rolledBackFirst;

    // Third run: to the end.
    const third = spawnProjector(env);
    await eventually(async () => {
      if (!alive(third)) throw new Error(`projector exited: ${describeChild(third)}`);
      return (await snapshot()).seq === lastUserSeq;
    }, 60_000, 5);
    expect(inconsistent).toEqual([]);
    // Stopping it the ordinary way ends it cleanly.
    third.proc.kill('SIGTERM');
    expect(await third.exited).toEqual({ code: 0, signal: null });

    expect(await assertConsistent()).toBe(lastUserSeq);
    // Both kills interrupted a batch: it had written rows, and they were rolled back with it.
    expect({ rolledBackFirst: rolledBackFirst > 0, rolledBackSecond: rolledBackSecond > 0 }).toEqual({ rolledBackFirst: true, rolledBackSecond: true });
    expect(await rolledBack()).toBe(rolledBackFirst + rolledBackSecond);

    // The read model equals a fold of the log, row by row: sealed fields opened with each person's key.
    const log = await readLog(rt, rt.names.aggregateSubjects('identity', 'user'));
    expect(log).toHaveLength(USERS);
    const folded = new Map(log.map((e) => [e.type === 'identity.UserRegistered' ? e.data.userId : '', e]));
    const { keys } = testUsers(rt);
    const ids = [...folded.keys()];
    const keyOf = new Map<string, Buffer>();
    for (let i = 0; i < ids.length; i += 5000) for (const [id, key] of await keys.getMany(ids.slice(i, i + 5000))) keyOf.set(id, key);
    expect(keyOf.size).toBe(USERS);
    const table = await rt.db.selectFrom('users').selectAll().execute();
    expect(table).toHaveLength(folded.size);
    const different = table.filter((row) => {
      const e = folded.get(row.id);
      return (
        !e ||
        e.type !== 'identity.UserRegistered' ||
        row.email !== openText(keyOf.get(row.id), row.id, e.data.emailSealed) ||
        row.email !== emailOf.get(row.id) ||
        row.display_name !== openText(keyOf.get(row.id), row.id, e.data.displayNameSealed) ||
        row.status !== 'active' ||
        row.registered_at.getTime() !== e.data.registeredAt.getTime() ||
        row.last_seq !== e.seq
      );
    });
    expect(different.slice(0, 5)).toEqual([]);
  });
});
