/**
 * Checkout latency with the manual provider through the real HTTP API
 * (issue 14), against the same HTTP round trip to a trivial route, in the
 * same run.
 *
 * The stack is the one tests/support/api-suite.ts boots: startApi (fastify
 * with tracing, metrics, the OpenAPI-checked routes) and every projector, on
 * the bench's own namespace and database. BENCH_USERS users are registered
 * (sealed UserRegistered, no argon2) and given access tokens; one plan at
 * 9.99 EUR is created.
 *
 *   checkout (new key): POST /v1/billing/checkout {planId, country} with a
 *          fresh Idempotency-Key each: the order loaded (none), the user's
 *          zone and default payment method resolved from the log, the price,
 *          OrderPlaced appended, the manual charge (OrderPending appended),
 *          then the answer waits until the orders read model holds the order
 *          (read-your-writes) and is read from it. 201.
 *   checkout (replayed key): the same request with a key used before: the
 *          order loaded, the request hash compared, the read model answered. 200.
 *   baseline: GET /health on the same server and client: the same
 *          connection, fastify, hooks and JSON; nothing behind it.
 *
 * Each kind runs BENCH_CHECKOUTS requests at concurrency 1 and at
 * BENCH_CONCURRENCY (a sliding window), users taken in turn, after a warm-up
 * of BENCH_WARMUP requests; the client is Node's fetch (undici) with
 * keep-alive, in this process: its cost is in every figure alike.
 *
 * Env: BENCH_CHECKOUTS (2000), BENCH_CONCURRENCY (16), BENCH_USERS (16),
 *      BENCH_WARMUP (50), BENCH_QUIET_WAIT_MS (60000).
 */
import { performance } from 'node:perf_hooks';
import { uuidv7 } from '../contracts/ids.js';
import { startApi } from '../infra/roles/api.js';
import { startProjectors } from '../infra/roles/projectors.js';
import { createPlan } from '../tests/support/plans.js';
import { testUsers } from '../tests/support/users.js';
import { percentile } from './processes.js';
import { envInt, fmt, inWindow, machine, rowCount, runMain, settleAudit, table, waitQuiet, withBench } from './support.js';

const CHECKOUTS = envInt('BENCH_CHECKOUTS', 2000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 16);
const USERS = envInt('BENCH_USERS', 16);
const WARMUP = envInt('BENCH_WARMUP', 50);
const META = { source: 'relaygrid/bench', actor: 'operator:bench' };

type Kind = 'health' | 'checkout' | 'replay';

const LABEL: Record<Kind, string> = {
  health: 'GET /health (baseline)',
  checkout: 'checkout, new key',
  replay: 'checkout, replayed key',
};

interface Run {
  kind: Kind;
  concurrency: number;
  p50: number;
  p99: number;
  max: number;
  seconds: number;
}

interface Request {
  method: 'GET' | 'POST';
  path: string;
  token?: string;
  key?: string;
  body?: unknown;
  status: number;
}

function requester(baseUrl: string) {
  return async (r: Request): Promise<number> => {
    const headers: Record<string, string> = {};
    if (r.token) headers['authorization'] = `Bearer ${r.token}`;
    if (r.key) headers['idempotency-key'] = r.key;
    if (r.body !== undefined) headers['content-type'] = 'application/json';
    const start = performance.now();
    const res = await fetch(`${baseUrl}${r.path}`, { method: r.method, headers, ...(r.body !== undefined ? { body: JSON.stringify(r.body) } : {}) });
    const text = await res.text();
    const ms = performance.now() - start;
    if (res.status !== r.status) throw new Error(`${r.method} ${r.path}: ${res.status}, expected ${r.status}: ${text.slice(0, 300)}`);
    return ms;
  };
}

async function measure(send: (r: Request) => Promise<number>, requests: readonly Request[], concurrency: number): Promise<Omit<Run, 'kind' | 'concurrency'>> {
  const latencies = new Float64Array(requests.length);
  const start = performance.now();
  await inWindow(requests.length, concurrency, async (i) => {
    latencies[i] = await send(requests[i]!);
  });
  const seconds = (performance.now() - start) / 1000;
  const sorted = latencies.sort();
  return { p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1] ?? 0, seconds };
}

async function main(): Promise<void> {
  await withBench('bench-checkout', async ({ rt }) => {
    console.log(`machine: ${await machine(rt)}`);
    const projectors = startProjectors(rt);
    const api = await startApi(rt, { host: '127.0.0.1', readTimeoutMs: 10_000 });
    try {
      const planId = await createPlan(api.plans, { price: { amountMinor: 999, currency: 'EUR' } });
      const users = testUsers(rt);
      const tokens: string[] = [];
      for (let u = 0; u < USERS; u++) {
        const { userId } = await users.register(api.identity.deps.handler, { email: `bench-${u}-${uuidv7()}@example.org` }, META);
        tokens.push(api.identity.deps.tokens.issue(userId, uuidv7(), ['client']));
      }
      console.log(`${fmt.int(CHECKOUTS)} requests per kind at concurrency 1 and ${CONCURRENCY}, ${USERS} users, manual provider, plan 9.99 EUR`);
      const send = requester(api.url);
      const body = { planId, country: 'US' };
      const used: Request[] = [];
      const build: Record<Kind, (i: number) => Request> = {
        health: () => ({ method: 'GET', path: '/health', status: 200 }),
        checkout: (i) => {
          const r: Request = { method: 'POST', path: '/v1/billing/checkout', token: tokens[i % USERS]!, key: uuidv7(), body, status: 201 };
          used.push({ ...r, status: 200 });
          return r;
        },
        replay: (i) => used[i % used.length]!,
      };
      for (const kind of ['health', 'checkout', 'replay'] as const) await measure(send, Array.from({ length: WARMUP }, (_, i) => build[kind](i)), CONCURRENCY);

      const runs: Run[] = [];
      for (const concurrency of [1, CONCURRENCY]) {
        for (const kind of ['health', 'checkout', 'replay'] as const) {
          const requests = Array.from({ length: CHECKOUTS }, (_, i) => build[kind](i));
          await settleAudit(rt);
          await waitQuiet();
          const run = { kind, concurrency, ...(await measure(send, requests, concurrency)) };
          runs.push(run);
          console.log(`  ${LABEL[kind].padEnd(24)} c=${String(concurrency).padStart(2)}  p50 ${run.p50.toFixed(2).padStart(6)} ms  p99 ${run.p99.toFixed(2).padStart(6)} ms  max ${run.max.toFixed(1).padStart(6)} ms  ${fmt.int(CHECKOUTS / run.seconds).padStart(6)} req/s`);
        }
      }
      const orders = await rowCount(rt, 'orders');
      const expected = WARMUP + 2 * CHECKOUTS;
      if (orders !== expected) throw new Error(`orders holds ${orders} rows, expected ${expected} (one per new key, none per replay)`);
      console.log(`  check: ${fmt.int(orders)} orders, one per new key; replays placed none`);
      console.log();
      const baseline = (c: number) => runs.find((r) => r.kind === 'health' && r.concurrency === c)!;
      console.log(
        table(
          ['kind', 'concurrency', 'p50 ms', 'p99 ms', 'p50 / baseline', 'p99 / baseline', 'req/s'],
          runs.map((r) => {
            const b = baseline(r.concurrency);
            return [LABEL[r.kind], String(r.concurrency), r.p50.toFixed(2), r.p99.toFixed(2), `${(r.p50 / b.p50).toFixed(1)}×`, `${(r.p99 / b.p99).toFixed(1)}×`, fmt.int(CHECKOUTS / r.seconds)];
          }),
        ),
      );
    } finally {
      await api.close();
      await projectors.close();
    }
  });
}

runMain(main);
