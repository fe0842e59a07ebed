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
 * (bench/identity-fill.ts, shared with bench/rebuild.ts).
 *
 * Env: BENCH_EVENTS (200000), BENCH_BATCH (2000), BENCH_ROUNDS (2, or 1 above
 *      200000 events), BENCH_FILL_CONCURRENCY (512).
 */
import { sql } from 'kysely';
import { startProjectors } from '../infra/roles/projectors.js';
import type { Runtime } from '../infra/runtime.js';
import { upsertUnnest } from '../projectors/runtime/unnest.js';
import { USER_COLUMNS } from '../projectors/identity/users.projection.js';
import type { UserTable } from '../schema/database.js';
import { agreeingUserRows, fillIdentityStream, type Users } from './identity-fill.js';
import {
  cpuLine,
  cpuSample,
  cpuSince,
  envInt,
  fmt,
  machine,
  table,
  timed,
  until,
  verdict,
  waitQuiet,
  withBench,
  rowCount,
  fastest,
  type CpuUse,
  runMain,
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


type Kind = 'raw' | 'projector';

interface Run {
  kind: Kind;
  round: number;
  events: number;
  seconds: number;
  cpu: CpuUse;
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

    const { users, lastSeq } = await fillIdentityStream(rt, EVENTS, FILL_CONCURRENCY);

    const runs: Run[] = [];
    const once = async (kind: Kind, round: number) => {
      await reset(rt, kind);
      await waitQuiet();
      const start = cpuSample();
      const seconds = kind === 'raw' ? await rawRun(rt, users) : await projectorRun(rt, lastSeq);
      const cpu = cpuSince(start, EVENTS);
      const n = await rowCount(rt, kind === 'raw' ? BASELINE_TABLE : 'users');
      if (n !== EVENTS) throw new Error(`${kind} round ${round}: expected ${EVENTS} rows, found ${n}`);
      runs.push({ kind, round, events: EVENTS, seconds, cpu });
      console.log(`  ${kind.padEnd(9)} round ${round}  ${fmt.int(EVENTS).padStart(9)} events  ${fmt.s(seconds).padStart(7)} s  ${fmt.int(EVENTS / seconds).padStart(7)} events/s   ${cpuLine(cpu)}`);
    };
    console.log('measured (alternating, best of each kind is kept)');
    for (let r = 1; r <= ROUNDS; r++) {
      const order: Kind[] = r % 2 === 1 ? ['raw', 'projector'] : ['projector', 'raw'];
      for (const kind of order) await once(kind, r);
    }

    const same = await agreeingUserRows(rt, BASELINE_TABLE);
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

runMain(main);
