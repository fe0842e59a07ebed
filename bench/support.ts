/**
 * Shared helpers of the benchmarks: an isolated namespace and database (the
 * same isolation as tests/support/isolated.ts, without vitest), a bounded
 * window of in-flight operations, timing and a plain-text table.
 *
 * Everything a benchmark creates lives under one namespace `b<hex>`: its
 * streams `<NS>_*`, its KV buckets `KV_<NS>_*` and its database `rg_<ns>`.
 * `cleanup()` removes all of it and runs on success, on error and on SIGINT /
 * SIGTERM.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import { openSandbox, type Sandbox } from '../infra/sandbox.js';
import type { Runtime } from '../infra/runtime.js';

const ADMIN_DATABASE_URL =
  process.env['BENCH_ADMIN_DATABASE_URL'] ?? process.env['TEST_ADMIN_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** A positive integer from the environment, or the default. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.replace(/_/g, ''));
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${name}="${raw}" must be a positive whole number`);
  return value;
}

export type BenchEnv = Sandbox;

/**
 * A fresh sandbox (namespace and database, migrated) that is also cleaned up
 * on SIGINT/SIGTERM, since a long benchmark is often interrupted by hand.
 */
export async function openBench(role: string): Promise<BenchEnv> {
  const env = await openSandbox({ prefix: 'b', role, adminDatabaseUrl: ADMIN_DATABASE_URL });
  const onSignal = (signal: NodeJS.Signals) => {
    console.error(`\n${signal}: cleaning up namespace ${env.namespace} and database ${env.database}`);
    void env.cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return env;
}

/** Rows in a table (of the bench's own database). */
export async function rowCount(rt: Runtime, tableName: string): Promise<number> {
  const { rows } = await rt.pool.query<{ n: number }>(`select count(*)::int as n from ${tableName}`);
  return rows[0]?.n ?? 0;
}

/** Runs `body` against a fresh bench environment and always cleans up. */
export async function withBench(role: string, body: (env: BenchEnv) => Promise<void>): Promise<void> {
  const env = await openBench(role);
  console.log(`namespace ${env.namespace}, database ${env.database}`);
  try {
    await body(env);
  } finally {
    await env.cleanup();
    console.log(`cleaned up namespace ${env.namespace} (streams ${env.rt.names.upper}_*, KV_${env.rt.names.upper}_*) and database ${env.database}`);
  }
}

/**
 * Calls `op(i)` for i in [0, count) with at most `concurrency` calls in flight:
 * a sliding window (a new call starts as soon as any one finishes), not waves.
 */
export async function inWindow(count: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await op(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** Wall-clock seconds `fn` takes. */
export async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return (performance.now() - start) / 1000;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` every `intervalMs` until it is true; throws after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 20): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(intervalMs);
  }
}

/** Waits until the audit stream has sourced every message of the context streams, so one run's tail does not slow the next. */
export async function settleAudit(rt: Runtime, timeoutMs = 600_000): Promise<void> {
  const contexts = rt.names.allContexts.map((c) => rt.names.stream(c));
  await until(
    'the audit stream to catch up',
    async () => {
      let total = 0;
      for (const name of contexts) total += (await rt.nats.jsm.streams.info(name)).state.messages;
      return (await rt.nats.jsm.streams.info(rt.names.auditStream)).state.messages >= total;
    },
    timeoutMs,
    200,
  );
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString('en-US'),
  s: (n: number) => n.toFixed(2),
  pct: (n: number) => `${(n * 100).toFixed(1)} %`,
};

/** A plain-text table with right-aligned columns after the first. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

export function verdict(ok: boolean): string {
  return ok ? 'PASS' : 'FAIL';
}

/** One line about the machine and servers the figures come from. */
export async function machine(rt: Runtime): Promise<string> {
  const { rows } = await rt.pool.query<{ server_version: string }>('show server_version');
  const nats = rt.nats.nc.info?.version ?? '?';
  const pgVersion = rows[0]?.server_version ?? '?';
  return `${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? '?'}), node ${process.version}, nats-server ${nats}, PostgreSQL ${pgVersion}, code ${revision()}`;
}

/** `git describe --always --dirty` of the working tree, so figures can be tied to the code they measured. */
function revision(): string {
  try {
    return execFileSync('git', ['describe', '--always', '--dirty'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

/** Cumulative CPU seconds of this process, nats-server, PostgreSQL and the whole machine. */
interface CpuSample {
  at: number;
  self: number;
  nats: number;
  postgres: number;
  busy: number;
  total: number;
}

const TICK = 100; // USER_HZ on Linux

function procTimes(): { nats: number; postgres: number } {
  let nats = 0;
  let postgres = 0;
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  } catch {
    return { nats, postgres };
  }
  for (const pid of entries) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // exited meanwhile
    }
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(open + 1, close);
    if (comm !== 'nats-server' && comm !== 'postgres') continue;
    // Fields after the command: state(3) … utime(14) stime(15) cutime(16) cstime(17), numbered from 1.
    const f = stat.slice(close + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // with reaped children (exited backends)
    if (comm === 'nats-server') nats += ticks / TICK;
    else postgres += ticks / TICK;
  }
  return { nats, postgres };
}

function machineTimes(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    return { busy: (total - idle) / TICK, total: total / TICK };
  } catch {
    return { busy: 0, total: 0 };
  }
}

export function cpuSample(): CpuSample {
  const u = process.cpuUsage();
  return { at: performance.now(), self: (u.user + u.system) / 1e6, ...procTimes(), ...machineTimes() };
}

export interface CpuUse {
  /** CPU-seconds per wall second (1.0 = one core fully busy). */
  self: number;
  nats: number;
  postgres: number;
  /** Everything else on the machine (other processes, other users' tests). */
  other: number;
  /** Machine-wide busy share of all cores, 0..1. */
  machine: number;
  /** CPU microseconds per event, by process. */
  perEvent: { self: number; nats: number; postgres: number };
}

export function cpuSince(start: CpuSample, events: number): CpuUse {
  const end = cpuSample();
  const wall = (end.at - start.at) / 1000;
  const self = end.self - start.self;
  const nats = end.nats - start.nats;
  const postgres = end.postgres - start.postgres;
  const busy = end.busy - start.busy;
  const total = end.total - start.total;
  return {
    self: self / wall,
    nats: nats / wall,
    postgres: postgres / wall,
    other: Math.max(0, busy - self - nats - postgres) / wall,
    machine: total > 0 ? busy / total : 0,
    perEvent: { self: (self / events) * 1e6, nats: (nats / events) * 1e6, postgres: (postgres / events) * 1e6 },
  };
}

/** `node 0.98, nats 0.61, pg 0.00, other 0.05 cores` */
export function cpuLine(c: CpuUse): string {
  return `cpu: bench ${c.self.toFixed(2)}, nats-server ${c.nats.toFixed(2)}, postgres ${c.postgres.toFixed(2)}, other ${c.other.toFixed(2)} cores`;
}

/**
 * Other engineers' builds and tests share these 2 cores. Before a measured run,
 * wait (up to `maxMs`) until the rest of the machine is nearly idle, so a run
 * measures the code and not the neighbours. Returns the load it started with.
 */
export async function waitQuiet(maxMs = envInt('BENCH_QUIET_WAIT_MS', 60_000), threshold = 0.3): Promise<number> {
  const deadline = performance.now() + maxMs;
  let waited = false;
  for (;;) {
    const start = cpuSample();
    await sleep(500);
    const end = cpuSample();
    const cores = (end.busy - start.busy - (end.self - start.self)) / ((end.at - start.at) / 1000);
    if (cores < threshold) return cores;
    if (performance.now() > deadline) {
      console.log(`  (machine still busy: ${cores.toFixed(2)} cores used by other processes; measuring anyway)`);
      return cores;
    }
    if (!waited) console.log(`  (waiting for the machine to be quiet: ${cores.toFixed(2)} cores busy elsewhere)`);
    waited = true;
  }
}

/** The fastest of the runs of one kind: the best case of each side is compared, which damps noise from the shared VM. */
export function fastest<R extends { kind: string; events: number; seconds: number }>(runs: readonly R[], kind: R['kind']): R {
  const mine = runs.filter((r) => r.kind === kind);
  if (mine.length === 0) throw new Error(`no ${kind} run`);
  return mine.reduce((a, b) => (b.events / b.seconds > a.events / a.seconds ? b : a));
}

/** Runs a benchmark's main; an error is printed and sets exit code 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}

/** Before a measured run that writes to Postgres: the audit worker caught up, a checkpoint, a quiet machine; returns the CPU sample to measure from. */
export async function settledStart(rt: Runtime): Promise<CpuSample> {
  await settleAudit(rt);
  await sql`checkpoint`.execute(rt.db);
  await waitQuiet();
  return cpuSample();
}
