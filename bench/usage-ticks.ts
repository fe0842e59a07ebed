/**
 * Usage ingestion: user-records/s through the tick append and the `usage`
 * projection, against raw batched upserts of the same sums, in the same run.
 *
 *   relaygrid: for one interval, every node's ticks as the agent builds them
 *              (NodeAgent.collectUsage: at most 5,000 users per tick, uuidv7
 *              tick ids from the interval's end, byte counts from bigints as
 *              decimal strings), sent as JSON. What the fleet's agent endpoint
 *              does with each is timed: JSON.parse, parseTick, appendTick
 *              (Avro encode, JetStream publish with the tick id as Nats-Msg-Id),
 *              all ticks of the interval concurrently; then until the `usage`
 *              projector's checkpoint reaches the last tick's sequence (tick
 *              ledger insert, per-user and per-node hourly sums, one additive
 *              unnest upsert per table and batch, checkpoint, in one transaction).
 *              The projector is the real Projector runtime with the usage
 *              projection, its apply wrapped only to count transactions.
 *   raw:       the same (user, hour) sums of the same ticks, upserted straight
 *              into an empty copy of usage_user_hourly with
 *              `insert … select * from unnest(…) on conflict do update set
 *              uplink = t.uplink + excluded.uplink, …`, one statement per tick
 *              (5,000 rows), one after another, autocommit; no NATS, no decode,
 *              no tick ledger, no per-node sums, no checkpoint.
 *
 * Every interval of the run ends in the same hour, so the first inserts
 * BENCH_USERS rows on both sides and the later ones add to them. Users are
 * spread evenly over the nodes (user i on node i mod BENCH_NODES). The two
 * sides alternate, interval by interval; at the end both tables must hold the
 * same rows and sums.
 *
 * Env: BENCH_USERS (100000), BENCH_NODES (20), BENCH_INTERVALS (3), BENCH_QUIET_WAIT_MS (60000).
 */
import { randomInt } from 'node:crypto';
import { sql } from 'kysely';
import { uuidv7 } from '../contracts/ids.js';
import { usageProjection } from '../projectors/usage/usage.projection.js';
import type { Projector } from '../projectors/runtime/projector.js';
import { countingProjector, untilProjected } from './counting-projector.js';
import type { Runtime } from '../infra/runtime.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { appendTick, MAX_USERS_PER_TICK, parseTick, ticksOf, type TickWire } from '../producers/usage/usage-ticks.js';
import { cpuLine, cpuSince, envInt, fmt, machine, rowCount, runMain, table, until, settledStart, withBench, type CpuUse } from './support.js';

const USERS = envInt('BENCH_USERS', 100_000);
const NODES = envInt('BENCH_NODES', 20);
const INTERVALS = envInt('BENCH_INTERVALS', 3);
const INTERVAL_MS = 10_000;
const HOUR_MS = 3_600_000;
const RAW_TABLE = 'usage_user_hourly_raw';

type Kind = 'raw' | 'relaygrid';

interface Interval {
  index: number;
  /** What each node sends: [nodeId, JSON text of the tick]. */
  wires: [string, string][];
}

interface Run {
  kind: Kind;
  interval: number;
  records: number;
  seconds: number;
  /** relaygrid: when the last append was acknowledged, from the start. */
  appendSeconds?: number;
  /** relaygrid: projector transactions for the interval. */
  transactions?: number;
  cpu: CpuUse;
}

/** One interval's ticks, built the way NodeAgent.collectUsage builds them from the core's counters. */
function buildInterval(index: number, userIds: readonly string[], hour: number): Interval {
  const start = new Date(hour + 60_000 + (index - 1) * INTERVAL_MS);
  const end = new Date(start.getTime() + INTERVAL_MS);
  const wires: [string, string][] = [];
  for (let n = 0; n < NODES; n++) {
    const nodeId = `node-${n.toString().padStart(3, '0')}`;
    // The driver's takeUserTraffic: bytes per user (by email = user id) since the last call.
    const traffic = new Map<string, { uplink: bigint; downlink: bigint }>();
    for (let u = n; u < userIds.length; u += NODES) traffic.set(userIds[u]!, { uplink: BigInt(randomInt(1, 5_000_000)), downlink: BigInt(randomInt(1, 50_000_000)) });
    for (const tick of ticksOf(traffic, start, end)) wires.push([nodeId, JSON.stringify(tick)]);
  }
  return { index, wires };
}

async function relaygridRun(store: EventStore, projector: Projector, interval: Interval): Promise<{ seconds: number; appendSeconds: number }> {
  const start = performance.now();
  // What AgentEndpoints does with a `usage` request, for every tick of the interval at once.
  const acks = await Promise.all(interval.wires.map(([nodeId, text]) => appendTick(store, parseTick(nodeId, JSON.parse(text) as TickWire))));
  const appendSeconds = (performance.now() - start) / 1000;
  if (acks.some((a) => a.duplicate)) throw new Error(`interval ${interval.index}: a fresh tick was taken for a duplicate`);
  const lastSeq = Math.max(...acks.map((a) => a.seq));
  await untilProjected(projector, lastSeq);
  return { seconds: (performance.now() - start) / 1000, appendSeconds };
}

/** The same sums, one additive unnest upsert per tick; building the arrays from the ticks is timed too, as the projection's is. */
async function rawRun(rt: Runtime, ticks: readonly ReturnType<typeof parseTick>[]): Promise<number> {
  const start = performance.now();
  for (const tick of ticks) {
    const hour = new Date(Math.floor(tick.intervalEnd.getTime() / HOUR_MS) * HOUR_MS);
    const ids: string[] = [];
    const hours: Date[] = [];
    const up: string[] = [];
    const down: string[] = [];
    for (const u of tick.users) {
      ids.push(u.userId);
      hours.push(hour);
      up.push(u.uplink.toString());
      down.push(u.downlink.toString());
    }
    await sql`
      insert into ${sql.table(RAW_TABLE)} as t (user_id, hour, uplink, downlink)
      select * from unnest(${ids}::text[], ${hours}::timestamptz[], ${up}::bigint[], ${down}::bigint[])
      on conflict (user_id, hour) do update set uplink = t.uplink + excluded.uplink, downlink = t.downlink + excluded.downlink
    `.execute(rt.db);
  }
  return (performance.now() - start) / 1000;
}

async function main(): Promise<void> {
  await withBench('bench-usage-ticks', async ({ rt }) => {
    console.log(`machine: ${await machine(rt)}`);
    const ticksPerInterval = NODES * Math.ceil(Math.ceil(USERS / NODES) / MAX_USERS_PER_TICK);
    console.log(`users ${fmt.int(USERS)} per interval on ${NODES} nodes (${fmt.int(ticksPerInterval)} ticks of ≤ ${fmt.int(MAX_USERS_PER_TICK)} users), intervals ${INTERVALS}`);
    await sql`create table ${sql.table(RAW_TABLE)} (like usage_user_hourly including all)`.execute(rt.db);

    const userIds = Array.from({ length: USERS }, () => uuidv7());
    // One hour for every interval (the previous one, so it is over and stays put): the first interval inserts, the next ones add.
    const hour = Math.floor(Date.now() / HOUR_MS) * HOUR_MS - HOUR_MS;
    const intervals = Array.from({ length: INTERVALS }, (_, i) => buildInterval(i + 1, userIds, hour));
    const bytes = intervals[0]!.wires.reduce((n, [, text]) => n + text.length, 0);
    console.log(`tick JSON: ${fmt.int(bytes / intervals[0]!.wires.length)} bytes per tick, ${fmt.s(bytes / 1e6)} MB per interval`);

    const store = new EventStore(rt.nats, rt.names, rt.registry);
    const { projector, transactions } = countingProjector(rt, usageProjection);
    const projecting = projector.run();
    const runs: Run[] = [];
    try {
      await until('the usage projector to start', () => projector.status().state === 'running', 30_000);
      console.log('measured (alternating per interval)');
      for (const interval of intervals) {
        const order: Kind[] = interval.index % 2 === 1 ? ['raw', 'relaygrid'] : ['relaygrid', 'raw'];
        for (const kind of order) {
          const cpuStart = await settledStart(rt);
          let run: Run;
          if (kind === 'raw') {
            const ticks = interval.wires.map(([nodeId, text]) => parseTick(nodeId, JSON.parse(text) as TickWire));
            run = { kind, interval: interval.index, records: USERS, seconds: await rawRun(rt, ticks), cpu: cpuSince(cpuStart, USERS) };
          } else {
            const before = transactions();
            const { seconds, appendSeconds } = await relaygridRun(store, projector, interval);
            run = { kind, interval: interval.index, records: USERS, seconds, appendSeconds, transactions: transactions() - before, cpu: cpuSince(cpuStart, USERS) };
          }
          runs.push(run);
          console.log(
            `  ${kind.padEnd(9)} interval ${run.interval}  ${fmt.int(run.records)} user-records  ${fmt.s(run.seconds).padStart(6)} s  ${fmt.int(run.records / run.seconds).padStart(8)} records/s` +
              `${run.appendSeconds !== undefined ? `  (appends acked at ${fmt.s(run.appendSeconds)} s, ${run.transactions} projector transactions)` : ''}   ${cpuLine(run.cpu)}`,
          );
        }
      }
    } finally {
      await projector.close();
      await projecting;
    }

    // Both sides must hold the same sums: the projection counted every tick once.
    const rows = await rowCount(rt, 'usage_user_hourly');
    const { rows: same } = await sql<{ n: number }>`
      select count(*)::int as n from usage_user_hourly u join ${sql.table(RAW_TABLE)} r using (user_id, hour)
      where u.uplink = r.uplink and u.downlink = r.downlink
    `.execute(rt.db);
    if (rows !== USERS || same[0]?.n !== USERS) throw new Error(`usage_user_hourly has ${rows} rows, ${same[0]?.n ?? 0} agreeing with the raw table; expected ${USERS}`);
    console.log(`  check: usage_user_hourly and the raw table hold the same ${fmt.int(USERS)} (user, hour) sums; ${await rowCount(rt, 'usage_ticks')} ticks in the ledger`);

    console.log();
    console.log(
      table(
        ['interval', 'raw records/s', 'relaygrid records/s', 'ratio', 'appends acked s', 'projector txns', 'bench CPU µs/record raw / relaygrid', 'nats µs/record', 'postgres µs/record raw / relaygrid'],
        intervals.map(({ index }) => {
          const raw = runs.find((r) => r.kind === 'raw' && r.interval === index)!;
          const rg = runs.find((r) => r.kind === 'relaygrid' && r.interval === index)!;
          return [
            `${index}${index === 1 ? ' (insert)' : ' (add)'}`,
            fmt.int(raw.records / raw.seconds),
            fmt.int(rg.records / rg.seconds),
            fmt.pct(raw.seconds / rg.seconds),
            fmt.s(rg.appendSeconds ?? NaN),
            String(rg.transactions ?? '?'),
            `${raw.cpu.perEvent.self.toFixed(2)} / ${rg.cpu.perEvent.self.toFixed(2)}`,
            rg.cpu.perEvent.nats.toFixed(2),
            `${raw.cpu.perEvent.postgres.toFixed(2)} / ${rg.cpu.perEvent.postgres.toFixed(2)}`,
          ];
        }),
      ),
    );
    const rate = (kind: Kind) => {
      const mine = runs.filter((r) => r.kind === kind);
      return Math.max(...mine.map((r) => r.records / r.seconds));
    };
    const ratio = rate('relaygrid') / rate('raw');
    console.log();
    console.log(`best relaygrid ${fmt.int(rate('relaygrid'))} user-records/s vs best raw ${fmt.int(rate('raw'))}: ratio ${fmt.pct(ratio)}  (reported; no goal is set for it)`);
  });
}

runMain(main);
