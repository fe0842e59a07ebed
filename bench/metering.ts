/**
 * Metering: user-records/s folded into subscription usage per period, against
 * raw batched upserts of the same records into a plain table, in the same run.
 *
 *   relaygrid: one interval's ticks (BENCH_USERS users over BENCH_NODES nodes,
 *              at most 5,000 users per tick, built by the agent's ticksOf) are
 *              appended to the usage stream untimed; then the real Projector
 *              runtime with the metering projection is started and timed until
 *              its checkpoint reaches the interval's last tick: tick ledger,
 *              each record's period looked up in subscription_periods by its
 *              interval end, additive unnest upsert into subscription_usage,
 *              the grant draw for periods over their allowance (none here),
 *              checkpoint, one transaction per batch.
 *   raw:       the same records, upserted straight into an empty table keyed
 *              (user_id, period_start) with the period start already known,
 *              `insert … select * from unnest(…) on conflict do update set
 *              … + excluded.…`, one statement per tick (5,000 rows), one after
 *              another, autocommit; no decode, no ledger, no period lookup, no
 *              checkpoint.
 *
 * Every user has a subscription period covering the run (seeded straight into
 * subscription_periods: the plans projector's output is this projection's
 * input). The first interval inserts BENCH_USERS rows on both sides, the later
 * ones add to them; the sides alternate; at the end both tables must hold the
 * same sums.
 *
 * Env: BENCH_USERS (100000), BENCH_NODES (20), BENCH_INTERVALS (3), BENCH_QUIET_WAIT_MS (60000).
 */
import { randomInt } from 'node:crypto';
import { sql } from 'kysely';
import { uuidv7 } from '../contracts/ids.js';
import type { Runtime } from '../infra/runtime.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { appendTick, MAX_USERS_PER_TICK, ticksOf, parseTick, type TickWire } from '../producers/usage/usage-ticks.js';
import { meteringProjection } from '../projectors/plans/metering.projection.js';
import { countingProjector, untilProjected } from './counting-projector.js';
import { cpuLine, cpuSince, envInt, fmt, machine, rowCount, runMain, table, verdict, settledStart, withBench, type CpuUse } from './support.js';

const USERS = envInt('BENCH_USERS', 100_000);
const NODES = envInt('BENCH_NODES', 20);
const INTERVALS = envInt('BENCH_INTERVALS', 3);
const INTERVAL_MS = 10_000;
const RAW_TABLE = 'subscription_usage_raw';
const GOAL = 0.5;

type Kind = 'raw' | 'relaygrid';
type Tick = ReturnType<typeof parseTick>;

interface Run {
  kind: Kind;
  interval: number;
  seconds: number;
  transactions?: number;
  cpu: CpuUse;
}

function buildInterval(index: number, userIds: readonly string[], periodStart: number): Tick[] {
  const start = new Date(periodStart + 60_000 + (index - 1) * INTERVAL_MS);
  const end = new Date(start.getTime() + INTERVAL_MS);
  const ticks: Tick[] = [];
  for (let n = 0; n < NODES; n++) {
    const traffic = new Map<string, { uplink: bigint; downlink: bigint }>();
    for (let u = n; u < userIds.length; u += NODES) traffic.set(userIds[u]!, { uplink: BigInt(randomInt(1, 5_000_000)), downlink: BigInt(randomInt(1, 50_000_000)) });
    for (const tick of ticksOf(traffic, start, end)) ticks.push(parseTick(`node-${n}`, JSON.parse(JSON.stringify(tick)) as TickWire));
  }
  return ticks;
}

async function rawRun(rt: Runtime, ticks: readonly Tick[], periodStart: Date): Promise<number> {
  const start = performance.now();
  for (const tick of ticks) {
    const ids = tick.users.map((u) => u.userId);
    await sql`
      insert into ${sql.table(RAW_TABLE)} as t (user_id, period_start, uplink_bytes, downlink_bytes)
      select u.user_id, ${periodStart}::timestamptz, u.up, u.down from unnest(${ids}::text[], ${tick.users.map((u) => u.uplink.toString())}::bigint[], ${tick.users.map((u) => u.downlink.toString())}::bigint[]) as u(user_id, up, down)
      on conflict (user_id, period_start) do update set uplink_bytes = t.uplink_bytes + excluded.uplink_bytes, downlink_bytes = t.downlink_bytes + excluded.downlink_bytes
    `.execute(rt.db);
  }
  return (performance.now() - start) / 1000;
}

async function relaygridRun(rt: Runtime, lastSeq: number): Promise<{ seconds: number; transactions: number }> {
  const { projector, transactions } = countingProjector(rt, meteringProjection);
  const start = performance.now();
  const running = projector.run();
  try {
    await untilProjected(projector, lastSeq);
  } finally {
    await projector.close();
    await running;
  }
  return { seconds: (performance.now() - start) / 1000, transactions: transactions() };
}

async function main(): Promise<void> {
  await withBench('bench-metering', async ({ rt }) => {
    console.log(`machine: ${await machine(rt)}`);
    console.log(`users ${fmt.int(USERS)} per interval on ${NODES} nodes (ticks of ≤ ${fmt.int(MAX_USERS_PER_TICK)} users), intervals ${INTERVALS}`);
    await sql`create table ${sql.table(RAW_TABLE)} (user_id text not null, period_start timestamptz not null, uplink_bytes bigint not null, downlink_bytes bigint not null, primary key (user_id, period_start))`.execute(rt.db);
    const userIds = Array.from({ length: USERS }, () => uuidv7());
    const periodStart = new Date(Date.now() - 86_400_000);
    await sql`
      insert into subscription_periods (user_id, period_start, period_end, allowance_bytes)
      select id, ${periodStart}::timestamptz, ${new Date(periodStart.getTime() + 30 * 86_400_000)}::timestamptz, 1099511627776 from unnest(${userIds}::text[]) as id
    `.execute(rt.db);
    const store = new EventStore(rt.nats, rt.names, rt.registry);
    const runs: Run[] = [];
    console.log('measured (alternating per interval)');
    for (let index = 1; index <= INTERVALS; index++) {
      const ticks = buildInterval(index, userIds, periodStart.getTime());
      const acks = await Promise.all(ticks.map((t) => appendTick(store, t)));
      const lastSeq = Math.max(...acks.map((a) => a.seq));
      const order: Kind[] = index % 2 === 1 ? ['raw', 'relaygrid'] : ['relaygrid', 'raw'];
      for (const kind of order) {
        const cpuStart = await settledStart(rt);
        let run: Run;
        if (kind === 'raw') run = { kind, interval: index, seconds: await rawRun(rt, ticks, periodStart), cpu: cpuSince(cpuStart, USERS) };
        else {
          const { seconds, transactions } = await relaygridRun(rt, lastSeq);
          run = { kind, interval: index, seconds, transactions, cpu: cpuSince(cpuStart, USERS) };
        }
        runs.push(run);
        console.log(`  ${kind.padEnd(9)} interval ${index}  ${fmt.int(USERS)} user-records  ${fmt.s(run.seconds).padStart(6)} s  ${fmt.int(USERS / run.seconds).padStart(8)} records/s${run.transactions !== undefined ? `  (${run.transactions} projector transactions)` : ''}   ${cpuLine(run.cpu)}`);
      }
    }

    const { rows: same } = await sql<{ n: number }>`
      select count(*)::int as n from subscription_usage u join ${sql.table(RAW_TABLE)} r using (user_id, period_start)
      where u.uplink_bytes = r.uplink_bytes and u.downlink_bytes = r.downlink_bytes
    `.execute(rt.db);
    const rows = await rowCount(rt, 'subscription_usage');
    if (rows !== USERS || same[0]?.n !== USERS) throw new Error(`subscription_usage has ${rows} rows, ${same[0]?.n ?? 0} agreeing with the raw table; expected ${USERS}`);
    console.log(`  check: subscription_usage and the raw table hold the same ${fmt.int(USERS)} (user, period) sums`);
    console.log();
    console.log(
      table(
        ['interval', 'raw records/s', 'relaygrid records/s', 'ratio', 'projector txns'],
        Array.from({ length: INTERVALS }, (_, i) => {
          const raw = runs.find((r) => r.kind === 'raw' && r.interval === i + 1)!;
          const rg = runs.find((r) => r.kind === 'relaygrid' && r.interval === i + 1)!;
          return [`${i + 1}${i === 0 ? ' (insert)' : ' (add)'}`, fmt.int(USERS / raw.seconds), fmt.int(USERS / rg.seconds), fmt.pct(raw.seconds / rg.seconds), String(rg.transactions)];
        }),
      ),
    );
    const best = (kind: Kind) => Math.max(...runs.filter((r) => r.kind === kind).map((r) => USERS / r.seconds));
    const ratio = best('relaygrid') / best('raw');
    console.log();
    console.log(`best relaygrid ${fmt.int(best('relaygrid'))} user-records/s vs best raw ${fmt.int(best('raw'))}: ratio ${fmt.pct(ratio)}  goal ≥ ${fmt.pct(GOAL)} ${verdict(ratio >= GOAL)}`);
  });
}

runMain(main);
