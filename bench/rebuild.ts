/**
 * Blue/green rebuild (issue 6): `relaygrid replay rebuild users`, through the
 * real code path, against a raw read of the same stream, in the same run.
 *
 *   rebuild:  rebuild(rt, 'users', { progress: false }) from replay/rebuild.ts
 *             while the live `users` projector runs: empty copies of the users
 *             table in a scratch schema, a second projector instance
 *             (`users~rebuild`, default batch) from the start of the log into
 *             them (lock, ordered consumer, CloudEvents + Avro decode, person
 *             keys read and unwrapped, fold, one transaction per batch with
 *             unnest upsert + fenced checkpoint + pg_notify), the tail check,
 *             the atomic switch, and the drop of the retired table
 *   raw read: an ordered consumer over the whole identity stream with the
 *             projector's consumer settings (same subject filter,
 *             max_messages = 2 × batch), the messages held in batches of the
 *             projector's batch size and `msg.info.pending` read for every
 *             message, as the projector does — no decode, no Postgres
 *             (replay/range.ts readRange)
 *
 * Not measured against the goal: the fill of BENCH_EVENTS sealed
 * UserRegistered events (bench/identity-fill.ts) and the live projector
 * catching up from zero, which is timed and printed as "live projection from
 * zero" for comparison.
 *
 * After every rebuild the users table must hold BENCH_EVENTS rows, identical
 * column for column to the rows the live projector had written, and the live
 * checkpoint must be the stream's last sequence.
 *
 * Env: BENCH_EVENTS (1000000), BENCH_ROUNDS (1), BENCH_FILL_CONCURRENCY (512),
 *      BENCH_QUIET_WAIT_MS (60000).
 */
import { sql } from 'kysely';
import { startProjectors, type RunningProjectors } from '../infra/roles/projectors.js';
import type { Runtime } from '../infra/runtime.js';
import { usersProjection } from '../projectors/identity/users.projection.js';
import { rebuild, rebuildNameOf, type RebuildReport } from '../replay/rebuild.js';
import { DEFAULT_BATCH_SIZE } from '../projectors/runtime/projector.js';
import { readRange } from '../replay/range.js';
import type { JsMsg } from '@nats-io/jetstream';
import { agreeingUserRows, fillIdentityStream } from './identity-fill.js';
import {
  cpuLine,
  cpuSample,
  cpuSince,
  envInt,
  fastest,
  fmt,
  machine,
  sleep,
  table,
  timed,
  until,
  verdict,
  waitQuiet,
  withBench,
  rowCount,
  type CpuUse,
  runMain,
} from './support.js';

const EVENTS = envInt('BENCH_EVENTS', 1_000_000);
const ROUNDS = envInt('BENCH_ROUNDS', 1);
const FILL_CONCURRENCY = envInt('BENCH_FILL_CONCURRENCY', 512);
/** The batch the rebuild's projector uses (neither startProjectors without a size nor rebuild() passes one). */
const PROJECTOR_BATCH = DEFAULT_BATCH_SIZE;
/** Issue 6: rebuild 1,000,000 events within this many seconds. */
const GOAL_EVENTS = 1_000_000;
const GOAL_SECONDS = 90;

/** A copy of the live projector's rows, taken before the rebuilds, to compare each rebuild with. */
const REFERENCE_TABLE = 'users_reference';
const REBUILD_NAME = rebuildNameOf(usersProjection.name);

type Kind = 'raw' | 'rebuild' | 'live';

interface Run {
  kind: Kind;
  round: number;
  events: number;
  seconds: number;
  cpu: CpuUse;
  /** Rebuild only: seconds until the rebuild projector's checkpoint reached the last sequence (polled every 100 ms). */
  projectedAt?: number;
}

async function liveCheckpoint(rt: Runtime): Promise<number> {
  const row = await rt.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', usersProjection.name).executeTakeFirst();
  return Number(row?.seq ?? 0);
}

/** Starts the live users projector from checkpoint 0 and waits until it has projected the whole stream. */
async function liveFromZero(rt: Runtime, lastSeq: number): Promise<{ running: RunningProjectors; seconds: number }> {
  let running: RunningProjectors | undefined;
  let failure: string | undefined;
  try {
    const seconds = await timed(async () => {
      running = startProjectors(rt, [usersProjection.name]);
      const projector = running.projectors[0]!;
      await until(
        'the live users projector to catch up',
        () => {
          const status = projector.status();
          if (status.failure) failure = status.failure.error;
          return status.checkpoint >= lastSeq || failure !== undefined;
        },
        30 * 60_000,
        5,
      );
    });
    if (!running) throw new Error('the live users projector did not start');
    if (failure) throw new Error(`the live users projector stopped: ${failure}`);
    return { running, seconds };
  } catch (err) {
    await running?.close();
    throw err;
  }
}

/** The projector's read without its work: same consumer, same batches held, pending read per message. */
async function rawRead(rt: Runtime, lastSeq: number): Promise<{ seconds: number; messages: number }> {
  const stream = rt.names.stream(usersProjection.context);
  const { state } = await rt.nats.jsm.streams.info(stream);
  let messages = 0;
  let held = 0;
  const seconds = await timed(async () => {
    let batch: JsMsg[] = [];
    messages = await readRange(
      rt.nats,
      { stream, from: state.first_seq, to: lastSeq },
      (msg) => {
        batch.push(msg);
        if (batch.length < PROJECTOR_BATCH && msg.info.pending > 0) return;
        held += batch.length;
        batch = [];
      },
      { filter: usersProjection.filter(rt.names), batch: PROJECTOR_BATCH * 2 },
    );
    held += batch.length;
  });
  if (held !== messages) throw new Error(`raw read: ${messages} messages read but ${held} held in batches`);
  return { seconds, messages };
}

/** rebuild(rt, 'users'), watching (every 100 ms) when its projector reaches the last sequence, so the switch and drop can be told apart. */
async function rebuildRun(rt: Runtime, lastSeq: number): Promise<{ seconds: number; report: RebuildReport; projectedAt?: number }> {
  const started = performance.now();
  let projectedAt: number | undefined;
  let watching = true;
  const watch = (async () => {
    while (watching && projectedAt === undefined) {
      await sleep(100);
      const row = await rt.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', REBUILD_NAME).executeTakeFirst();
      if (row && Number(row.seq) >= lastSeq) projectedAt = (performance.now() - started) / 1000;
    }
  })();
  let report: RebuildReport;
  try {
    report = await rebuild(rt, usersProjection.name, { progress: false });
  } finally {
    watching = false;
    await watch.catch(() => undefined);
  }
  const seconds = (performance.now() - started) / 1000;
  return { seconds, report, ...(projectedAt !== undefined ? { projectedAt } : {}) };
}

function label(kind: Kind): string {
  if (kind === 'raw') return 'raw ordered-consumer read (no decode, no Postgres)';
  if (kind === 'live') return 'live projector from zero (not the goal)';
  return 'replay rebuild users (blue/green)';
}

async function main(): Promise<void> {
  await withBench('bench-rebuild', async ({ rt }) => {
    console.log(`machine: ${await machine(rt)}`);
    console.log(`events ${fmt.int(EVENTS)}, projector batch ${fmt.int(PROJECTOR_BATCH)} (consumer max_messages ${fmt.int(PROJECTOR_BATCH * 2)}), rounds ${ROUNDS}`);

    const { lastSeq } = await fillIdentityStream(rt, EVENTS, FILL_CONCURRENCY);

    const runs: Run[] = [];
    const report = (run: Run, extra = '') =>
      console.log(
        `  ${run.kind.padEnd(7)} round ${run.round}  ${fmt.int(run.events).padStart(9)} events  ${fmt.s(run.seconds).padStart(7)} s  ${fmt.int(run.events / run.seconds).padStart(7)} events/s   ${cpuLine(run.cpu)}${extra}`,
      );

    console.log('live users projector from checkpoint 0 (timed for comparison, not the goal)');
    await sql`checkpoint`.execute(rt.db);
    await waitQuiet();
    const liveStart = cpuSample();
    const live = await liveFromZero(rt, lastSeq);
    const liveRun: Run = { kind: 'live', round: 1, events: EVENTS, seconds: live.seconds, cpu: cpuSince(liveStart, EVENTS) };
    runs.push(liveRun);
    report(liveRun);

    try {
      const liveRows = await rowCount(rt, 'users');
      if (liveRows !== EVENTS) throw new Error(`the live projector wrote ${liveRows} rows, expected ${EVENTS}`);
      await sql`create table ${sql.table(REFERENCE_TABLE)} as select * from users`.execute(rt.db);
      console.log(`  copied the live projector's ${fmt.int(liveRows)} rows to ${REFERENCE_TABLE} (not measured), to check each rebuild against`);

      const once = async (kind: 'raw' | 'rebuild', round: number) => {
        await sql`checkpoint`.execute(rt.db);
        await waitQuiet();
        const start = cpuSample();
        if (kind === 'raw') {
          const { seconds, messages } = await rawRead(rt, lastSeq);
          const run: Run = { kind, round, events: messages, seconds, cpu: cpuSince(start, messages) };
          if (messages !== EVENTS) throw new Error(`raw read round ${round}: read ${messages} messages, expected ${EVENTS}`);
          runs.push(run);
          report(run);
          return;
        }
        const { seconds, report: rebuilt, projectedAt } = await rebuildRun(rt, lastSeq);
        const run: Run = { kind, round, events: EVENTS, seconds, cpu: cpuSince(start, EVENTS), ...(projectedAt !== undefined ? { projectedAt } : {}) };
        const rows = await rowCount(rt, 'users');
        if (rows !== EVENTS) throw new Error(`rebuild round ${round}: users holds ${rows} rows after the switch, expected ${EVENTS}`);
        if (rebuilt.checkpoint !== lastSeq) throw new Error(`rebuild round ${round}: switched at sequence ${rebuilt.checkpoint}, expected ${lastSeq}`);
        const checkpoint = await liveCheckpoint(rt);
        if (checkpoint !== lastSeq) throw new Error(`rebuild round ${round}: live checkpoint ${checkpoint} after the switch, expected ${lastSeq}`);
        const same = await agreeingUserRows(rt, REFERENCE_TABLE);
        if (same !== EVENTS) throw new Error(`rebuild round ${round}: ${same} of ${EVENTS} rows agree with what the live projector wrote`);
        runs.push(run);
        report(run, projectedAt !== undefined ? `   (projected to the tail at ${fmt.s(projectedAt)} s)` : '');
        console.log(
          `  check: users holds ${fmt.int(rows)} rows (= BENCH_EVENTS), identical to the live projection; ${fmt.int(rebuilt.messages)} messages, switched at sequence ${rebuilt.checkpoint}; rebuild() reported ${fmt.s(rebuilt.seconds)} s`,
        );
      };
      console.log('measured (alternating, best of each kind is kept)');
      for (let r = 1; r <= ROUNDS; r++) {
        const order: ('raw' | 'rebuild')[] = r % 2 === 1 ? ['raw', 'rebuild'] : ['rebuild', 'raw'];
        for (const kind of order) await once(kind, r);
      }
    } finally {
      await live.running.close();
    }

    const raw = fastest(runs, 'raw');
    const reb = fastest(runs, 'rebuild');
    const rawRate = raw.events / raw.seconds;
    const rebRate = reb.events / reb.seconds;

    console.log();
    console.log(
      table(
        ['path', 'events', 'seconds', 'events/s', 'bench CPU µs/event', 'nats-server CPU µs/event', 'postgres CPU µs/event'],
        [raw, reb, liveRun].map((r) => [
          label(r.kind),
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
    if (reb.projectedAt !== undefined) {
      console.log(
        `rebuild phases: projection to the tail ${fmt.s(reb.projectedAt)} s (±0.1 s), then tail check + switch + drop of the old table ${fmt.s(reb.seconds - reb.projectedAt)} s`,
      );
    }
    console.log(`ratio rebuild / raw read: ${fmt.pct(rebRate / rawRate)} of the raw read rate (the rebuild takes ${(reb.seconds / raw.seconds).toFixed(2)} × the raw read time)`);
    if (EVENTS >= GOAL_EVENTS) {
      const scaled = reb.seconds * (GOAL_EVENTS / EVENTS);
      console.log(
        `rebuild of ${fmt.int(EVENTS)} events: ${fmt.s(reb.seconds)} s  (goal: ${fmt.int(GOAL_EVENTS)} in < ${GOAL_SECONDS} s)  ${verdict(scaled < GOAL_SECONDS)}`,
      );
    } else {
      const projected = GOAL_EVENTS / rebRate;
      console.log(
        `rebuild of ${fmt.int(GOAL_EVENTS)} events, EXTRAPOLATED linearly from ${fmt.int(EVENTS)} at ${fmt.int(rebRate)} events/s: ~${fmt.s(projected)} s  (goal < ${GOAL_SECONDS} s)  ${verdict(projected < GOAL_SECONDS)} (extrapolation; run with BENCH_EVENTS=1000000 to measure it)`,
      );
    }
  });
}

runMain(main);
