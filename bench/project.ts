/**
 * Projection throughput: a rebuild of the `users` read model through the real
 * projector runtime against a raw Postgres baseline, in the same run.
 *
 *   projector: startProjectors(rt, ['users'], BENCH_BATCH) from checkpoint 0
 *              until the checkpoint reaches the stream's last sequence
 *              (lock, ordered consumer, CloudEvents + Avro decode, person keys
 *              of the batch read and unwrapped, email and display name opened,
 *              fold, one transaction per batch with unnest upsert + fenced
 *              checkpoint + pg_notify)
 *   raw:       the same rows, built in memory batch by batch, written with the
 *              same unnest upsert in batches of BENCH_BATCH into an empty copy
 *              of the users table (autocommit, no NATS, no decode, no keys,
 *              no checkpoint)
 *
 * The identity stream is pre-filled (not measured) with BENCH_EVENTS
 * UserRegistered v3 events through EventStore.append, their personal data
 * sealed as the API seals it under one data key per person; the keys are
 * written to person_keys, wrapped as PersonKeys wraps them, in batches.
 *
 * Env: BENCH_EVENTS (200000), BENCH_BATCH (2000), BENCH_ROUNDS (2, or 1 above
 *      200000 events), BENCH_FILL_CONCURRENCY (512).
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { requireMasterKey } from '../infra/config.js';
import { startProjectors } from '../infra/roles/projectors.js';
import type { Runtime } from '../infra/runtime.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { deriveKey, seal } from '../producers/identity/crypto/sealing.js';
import { EmailIndex } from '../producers/identity/email.js';
import { upsertUnnest } from '../projectors/runtime/unnest.js';
import { USER_COLUMNS } from '../projectors/identity/users.projection.js';
import type { UserTable } from '../schema/database.js';
import {
  cpuLine,
  cpuSample,
  cpuSince,
  envInt,
  fmt,
  inWindow,
  machine,
  settleAudit,
  table,
  timed,
  until,
  verdict,
  waitQuiet,
  withBench,
  fastest,
  type CpuUse,
} from './support.js';

const EVENTS = envInt('BENCH_EVENTS', 200_000);
const BATCH = envInt('BENCH_BATCH', 2000);
const ROUNDS = envInt('BENCH_ROUNDS', EVENTS > 200_000 ? 1 : 2);
const FILL_CONCURRENCY = envInt('BENCH_FILL_CONCURRENCY', 512);
/** The projector must reach this share of the raw Postgres write rate… */
const GOAL_RATIO = 0.5;
/** …and this absolute rate… */
const GOAL_RATE = 20_000;
/** …and rebuild 1,000,000 events within this many seconds. */
const GOAL_REBUILD_EVENTS = 1_000_000;
const GOAL_REBUILD_SECONDS = 90;

const BASELINE_TABLE = 'users_baseline';
/** Person keys per insert into person_keys while filling. */
const KEY_BATCH = 1000;
/** A stand-in argon2id PHC string of the real width: sealed into every registration as the API does, never opened here. */
const PASSWORD_HASH = `$argon2id$v=19$m=19456,t=2,p=1$${'s'.repeat(22)}$${'h'.repeat(43)}`;


type Kind = 'raw' | 'projector';

interface Run {
  kind: Kind;
  round: number;
  events: number;
  seconds: number;
  cpu: CpuUse;
}

/**
 * The i-th user, derived from i alone (plus the stream sequence the append got),
 * so the baseline can rebuild exactly the rows the projector must write without
 * the bench holding a million row objects on its heap, which would slow every
 * major GC of the projector run sharing this process.
 */
class Users {
  private readonly baseMs = Date.now() - EVENTS;
  private readonly tag = randomBytes(2).toString('hex').slice(0, 3);
  /** Stream sequence of each user's UserRegistered event (off-heap: one typed array). */
  readonly seqs = new Float64Array(EVENTS);

  /** A UUIDv7 whose timestamp is registration time and whose last 48 bits are i. */
  id(i: number): string {
    const ms = (this.baseMs + i).toString(16).padStart(12, '0');
    return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${this.tag}-8000-${i.toString(16).padStart(12, '0')}`;
  }

  /** The row the projector must write for the i-th registration (the event's time is its registration time). */
  row(i: number): UserTable {
    const registeredAt = new Date(this.baseMs + i);
    return {
      id: this.id(i),
      email: `user-${i.toString().padStart(8, '0')}@bench.relaygrid.test`,
      display_name: i % 5 === 0 ? null : `Bench User ${i}`,
      status: 'active',
      registered_at: registeredAt,
      email_verified: false,
      roles: ['client'],
      presence_visibility: 'contacts',
      receipts_visibility: 'contacts',
      totp_enabled: false,
      suspended_reason: null,
      updated_at: registeredAt,
      last_seq: this.seqs[i] ?? 0,
    };
  }
}

/**
 * Appends EVENTS sealed registrations through the event store, recording each one's
 * sequence, and stores each person's key (wrapped as PersonKeys.create wraps it) in
 * batches of KEY_BATCH: the keys are only read once the fill is over.
 */
async function fill(rt: Runtime, users: Users): Promise<void> {
  const store = new EventStore(rt.nats, rt.names, rt.registry);
  const master = requireMasterKey(rt.config);
  const wrapKey = deriveKey(master, 'person-key-wrap');
  const emails = new EmailIndex(master);
  let keys: { user_id: string; wrapped_key: Buffer }[] = [];
  const flushKeys = async () => {
    const batch = keys;
    keys = [];
    if (batch.length > 0) await rt.db.insertInto('person_keys').values(batch).execute();
  };
  let done = 0;
  const started = performance.now();
  const progress = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    console.log(`  fill: ${fmt.int(done)} / ${fmt.int(EVENTS)} (${fmt.int(done / s)} events/s)`);
  }, 10_000);
  try {
    await inWindow(EVENTS, FILL_CONCURRENCY, async (i) => {
      const row = users.row(i);
      const key = randomBytes(32);
      keys.push({ user_id: row.id, wrapped_key: seal(wrapKey, row.id, key) });
      if (keys.length >= KEY_BATCH) await flushKeys();
      const email = row.email ?? '';
      const { seq } = await store.append(
        rt.names.aggregate('identity', 'user', row.id),
        [
          {
            type: 'identity.UserRegistered',
            data: {
              userId: row.id,
              emailHash: emails.of(email),
              emailSealed: seal(key, row.id, email),
              displayNameSealed: row.display_name === null ? null : seal(key, row.id, row.display_name),
              passwordHashSealed: seal(key, row.id, PASSWORD_HASH),
              roles: row.roles,
              registeredAt: row.registered_at,
            },
          },
        ],
        { expectedSeq: 0, meta: { source: 'relaygrid/api', actor: `user:${row.id}`, correlationId: `fill-${i}` }, time: row.registered_at },
      );
      users.seqs[i] = seq;
      done++;
    });
    await flushKeys();
  } finally {
    clearInterval(progress);
  }
}

async function reset(rt: Runtime, kind: Kind): Promise<void> {
  if (kind === 'raw') {
    await sql`truncate ${sql.table(BASELINE_TABLE)}`.execute(rt.db);
  } else {
    await sql`truncate users`.execute(rt.db);
    await rt.db.deleteFrom('projector_checkpoints').where('projector', '=', 'users').execute();
  }
  // Start every run with clean shared buffers / WAL: flush what the previous run left dirty.
  await sql`checkpoint`.execute(rt.db);
}

/** Rows on which the projected table and the baseline agree column for column. */
async function agreeing(rt: Runtime): Promise<number> {
  const { rows } = await rt.pool.query<{ n: number }>(
    `select count(*)::int as n from users u join ${BASELINE_TABLE} b using (id)
      where (u.email, u.display_name, u.status, u.registered_at, u.email_verified, u.roles, u.presence_visibility, u.receipts_visibility,
             u.totp_enabled, u.suspended_reason, u.updated_at, u.last_seq)
            is not distinct from
            (b.email, b.display_name, b.status, b.registered_at, b.email_verified, b.roles, b.presence_visibility, b.receipts_visibility,
             b.totp_enabled, b.suspended_reason, b.updated_at, b.last_seq)`,
  );
  return rows[0]?.n ?? 0;
}

async function count(rt: Runtime, tableName: string): Promise<number> {
  const { rows } = await rt.pool.query<{ n: number }>(`select count(*)::int as n from ${tableName}`);
  return rows[0]?.n ?? 0;
}

/** Builds each batch's rows (the same rows the projector writes) and upserts them; row building is timed too (~1 µs/row). */
async function rawRun(rt: Runtime, users: Users): Promise<number> {
  return timed(async () => {
    for (let i = 0; i < EVENTS; i += BATCH) {
      const rows: UserTable[] = [];
      for (let j = i; j < Math.min(i + BATCH, EVENTS); j++) rows.push(users.row(j));
      await upsertUnnest(rt.db, BASELINE_TABLE, USER_COLUMNS, rows, ['id']);
    }
  });
}

async function projectorRun(rt: Runtime, lastSeq: number): Promise<number> {
  let running: ReturnType<typeof startProjectors> | undefined;
  let failure: string | undefined;
  try {
    return await timed(async () => {
      running = startProjectors(rt, ['users'], BATCH);
      const projector = running.projectors[0]!;
      await until(
        'the users projector to catch up',
        () => {
          const status = projector.status();
          if (status.failure) failure = status.failure.error;
          return status.checkpoint >= lastSeq || failure !== undefined;
        },
        30 * 60_000,
        5,
      );
    });
  } finally {
    await running?.close();
    if (failure) throw new Error(`the users projector stopped: ${failure}`);
  }
}

async function main(): Promise<void> {
  await withBench('bench-project', async ({ rt }) => {
    console.log(`machine: ${await machine(rt)}`);
    console.log(`events ${fmt.int(EVENTS)}, batch ${fmt.int(BATCH)}, rounds ${ROUNDS}`);
    await sql`create table ${sql.table(BASELINE_TABLE)} (like users including all)`.execute(rt.db);

    console.log(`filling ${rt.names.stream('identity')} (not measured)`);
    const users = new Users();
    const fillSeconds = await timed(async () => {
      await fill(rt, users);
      await settleAudit(rt);
    });
    const { state } = await rt.nats.jsm.streams.info(rt.names.stream('identity'));
    const lastSeq = state.last_seq;
    if (state.messages !== EVENTS) throw new Error(`expected ${EVENTS} messages in the identity stream, found ${state.messages}`);
    const keyCount = await count(rt, 'person_keys');
    if (keyCount !== EVENTS) throw new Error(`expected ${EVENTS} person keys, found ${keyCount}`);
    console.log(`  filled ${fmt.int(EVENTS)} events in ${fmt.s(fillSeconds)} s (${fmt.int(EVENTS / fillSeconds)} events/s, audit stream caught up); last sequence ${lastSeq}`);

    const runs: Run[] = [];
    const once = async (kind: Kind, round: number) => {
      await reset(rt, kind);
      await waitQuiet();
      const start = cpuSample();
      const seconds = kind === 'raw' ? await rawRun(rt, users) : await projectorRun(rt, lastSeq);
      const cpu = cpuSince(start, EVENTS);
      const n = await count(rt, kind === 'raw' ? BASELINE_TABLE : 'users');
      if (n !== EVENTS) throw new Error(`${kind} round ${round}: expected ${EVENTS} rows, found ${n}`);
      runs.push({ kind, round, events: EVENTS, seconds, cpu });
      console.log(`  ${kind.padEnd(9)} round ${round}  ${fmt.int(EVENTS).padStart(9)} events  ${fmt.s(seconds).padStart(7)} s  ${fmt.int(EVENTS / seconds).padStart(7)} events/s   ${cpuLine(cpu)}`);
    };
    console.log('measured (alternating, best of each kind is kept)');
    for (let r = 1; r <= ROUNDS; r++) {
      const order: Kind[] = r % 2 === 1 ? ['raw', 'projector'] : ['projector', 'raw'];
      for (const kind of order) await once(kind, r);
    }

    const same = await agreeing(rt);
    if (same !== EVENTS) throw new Error(`the projector and the baseline wrote different rows: ${same} of ${EVENTS} agree`);
    console.log(`  check: the projected users table and the baseline table hold the same ${fmt.int(same)} rows`);

    const raw = fastest(runs, 'raw');
    const proj = fastest(runs, 'projector');
    const rawRate = raw.events / raw.seconds;
    const projRate = proj.events / proj.seconds;
    const ratio = projRate / rawRate;

    console.log();
    console.log(
      table(
        ['path', 'events', 'seconds', 'events/s', 'bench CPU µs/event', 'nats-server CPU µs/event', 'postgres CPU µs/event'],
        [raw, proj].map((r) => [
          r.kind === 'raw' ? 'raw unnest upsert (no NATS)' : 'projector runtime (users)',
          fmt.int(r.events),
          fmt.s(r.seconds),
          fmt.int(r.events / r.seconds),
          r.cpu.perEvent.self.toFixed(1),
          r.cpu.perEvent.nats.toFixed(1),
          r.cpu.perEvent.postgres.toFixed(1),
        ]),
      ),
    );
    console.log();
    console.log(`ratio projector / raw: ${fmt.pct(ratio)}  (goal >= ${fmt.pct(GOAL_RATIO)})  ${verdict(ratio >= GOAL_RATIO)}`);
    console.log(`projector rate: ${fmt.int(projRate)} events/s  (goal >= ${fmt.int(GOAL_RATE)} events/s)  ${verdict(projRate >= GOAL_RATE)}`);
    if (EVENTS >= GOAL_REBUILD_EVENTS) {
      console.log(
        `rebuild of ${fmt.int(EVENTS)} events: ${fmt.s(proj.seconds)} s  (goal: ${fmt.int(GOAL_REBUILD_EVENTS)} in < ${GOAL_REBUILD_SECONDS} s)  ${verdict(proj.seconds * (GOAL_REBUILD_EVENTS / EVENTS) < GOAL_REBUILD_SECONDS)}`,
      );
    } else {
      console.log(
        `rebuild of ${fmt.int(GOAL_REBUILD_EVENTS)} events at this rate: ~${fmt.s(GOAL_REBUILD_EVENTS / projRate)} s (goal < ${GOAL_REBUILD_SECONDS} s; run with BENCH_EVENTS=1000000 to measure it)`,
      );
    }
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
