/**
 * Memory per idle connection of the messenger gateway (issue "Speed", 3), with
 * a raw baseline in the same run:
 *
 *   gateway  the real gateway (startGateway) alone in a child process
 *            (bench/messenger-server.ts, started with --expose-gc), and
 *            BENCH_CONNECTIONS (10,000) devices of as many users connected from
 *            this process, each resumed (`resume` → `synced`) and then idle.
 *   uws      a bare uWebSockets.js server alone in a child process, with as
 *            many idle sockets.
 *
 * Per connection = (memory with every socket open − memory before the first)
 * / connections, both read right after two forced full GCs in the child:
 * VmRSS from /proc/<pid>/status (everything: V8 heap, uWS's native memory,
 * the NATS client's buffers) and heapUsed from process.memoryUsage().
 * Goal: gateway under 10 KB per connection, RSS included.
 *
 * The 10,000 devices are rows inserted into the `devices` read model with SQL
 * (what the devices projector writes; the gateway only reads that table), and
 * the access tokens come from the real AccessTokens (tokens.issue) with the
 * sandbox's key, so every upgrade runs the gateway's real checks. The sockets
 * are `WireSocket`s (bench/messenger-support.ts), which answer pings.
 * `npm run bench:ws-memory` raises this process's fd limit to the hard limit.
 *
 * Env: BENCH_CONNECTIONS (10000), BENCH_CONCURRENCY (100 upgrades in flight),
 *      BENCH_HEAP_SNAPSHOTS (a directory for heap snapshots of the server; none by default).
 */
import { performance } from 'node:perf_hooks';
import { uuidv7 } from '../contracts/ids.js';
import { openIdentity } from '../infra/roles/api.js';
import type { Runtime } from '../infra/runtime.js';
import type { ServerMemory } from './messenger-server.js';
import { sandboxEnv } from '../tests/support/cli.js';
import { Child, ciphertext, kb, openMany, relaygridOnline, WireSocket, type MessengerPerson } from './messenger-support.js';
import { envInt, fmt, sleep, table, verdict, withBench, machine, runMain } from './support.js';

const CONNECTIONS = envInt('BENCH_CONNECTIONS', 10_000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 100);
const GOAL_BYTES = 10 * 1024;
const SETTLE_MS = 3000;
/** A directory: heap snapshots of the server before and after connecting are written there (BENCH_HEAP_SNAPSHOTS). */
const SNAPSHOTS = process.env['BENCH_HEAP_SNAPSHOTS'];

type Kind = 'gateway' | 'uws';

/** `count` users with one device each, straight into the devices table, and a token each. */
async function devices(rt: Runtime, count: number): Promise<MessengerPerson[]> {
  const identity = openIdentity(rt);
  const people = Array.from({ length: count }, () => {
    const userId = uuidv7();
    return { userId, deviceId: uuidv7(), token: identity.deps.tokens.issue(userId, uuidv7(), ['client']) };
  });
  const key = ciphertext(33);
  const signature = ciphertext(64);
  await rt.pool.query(
    `insert into devices (id, user_id, name, identity_key, signed_prekey_id, signed_prekey, signed_prekey_signature, registered_at, removed_at, last_seq)
     select d, u, 'bench', $3, 1, $3, $4, now(), null, 0 from unnest($1::text[], $2::text[]) as t(d, u)`,
    [people.map((p) => p.deviceId), people.map((p) => p.userId), key, signature],
  );
  return people;
}

interface Measured {
  kind: Kind;
  before: ServerMemory;
  after: ServerMemory;
  connectSeconds: number;
}

async function measure(kind: Kind, rt: Runtime, people: readonly MessengerPerson[]): Promise<Measured> {
  const server = new Child('./messenger-server.js', [kind], { env: sandboxEnv(rt.config), execArgv: ['--expose-gc'] });
  let sockets: WireSocket[] = [];
  try {
    const port = await server.request<number>('start');
    // Twice, a settle apart: the first full GCs after start-up still shrink the heap (which once made the baseline's delta negative).
    await sleep(SETTLE_MS);
    await server.request<ServerMemory>('memory');
    await sleep(SETTLE_MS);
    const before = await server.request<ServerMemory>('memory');
    if (SNAPSHOTS) await server.request('snapshot', { path: `${SNAPSHOTS}/${kind}-before.heapsnapshot` });
    const started = performance.now();
    let opened = 0;
    const progress = setInterval(() => console.log(`  ${kind}: ${fmt.int(opened)} / ${fmt.int(people.length)} connected`), 10_000);
    try {
      sockets = await openMany(people.length, CONCURRENCY, async (i) => {
        const p = people[i]!;
        const ws = kind === 'gateway' ? await relaygridOnline(port, p.token, p.deviceId) : await WireSocket.open({ port, path: '/' });
        opened++;
        return ws;
      });
    } finally {
      clearInterval(progress);
    }
    const connectSeconds = (performance.now() - started) / 1000;
    await sleep(SETTLE_MS);
    const after = await server.request<ServerMemory>('memory');
    if (SNAPSHOTS) await server.request('snapshot', { path: `${SNAPSHOTS}/${kind}-after.heapsnapshot` });
    const lost = sockets.filter((s) => s.closed).length;
    if (lost > 0) throw new Error(`${kind}: ${lost} sockets were closed before the measurement`);
    const perConnection = (after.rss - before.rss) / people.length;
    console.log(`  ${kind.padEnd(7)} ${fmt.int(people.length)} idle sockets connected in ${fmt.s(connectSeconds)} s: RSS ${kb(before.rss)} → ${kb(after.rss)} KB, ${kb(perConnection)} KB per connection`);
    return { kind, before, after, connectSeconds };
  } finally {
    for (const ws of sockets) ws.destroy();
    await server.request('stop').catch(() => undefined);
    await server.close();
  }
}

async function main(): Promise<void> {
  await withBench('bench-messenger-ws-memory', async ({ rt }) => {
    console.log(`machine: ${await machine(rt)}`);
    const people = await devices(rt, CONNECTIONS);
    console.log(`inserted ${fmt.int(CONNECTIONS)} devices into the devices table (SQL) and issued as many access tokens`);
    const runs = [await measure('gateway', rt, people), await measure('uws', rt, people)];
    const per = (r: Measured, field: keyof ServerMemory) => (r.after[field] - r.before[field]) / CONNECTIONS;
    console.log();
    console.log(
      table(
        [`${fmt.int(CONNECTIONS)} idle connections`, 'RSS before MB', 'RSS after MB', 'RSS KB/conn', 'heapUsed KB/conn', 'heapTotal KB/conn', 'external KB/conn', 'connect s'],
        runs.map((r) => [
          r.kind === 'gateway' ? 'Relaygrid gateway (child process)' : 'bare uWS (child process)',
          (r.before.rss / 2 ** 20).toFixed(1),
          (r.after.rss / 2 ** 20).toFixed(1),
          kb(per(r, 'rss')),
          kb(per(r, 'heapUsed')),
          kb(per(r, 'heapTotal')),
          kb(per(r, 'external')),
          fmt.s(r.connectSeconds),
        ]),
      ),
    );
    const gateway = per(runs[0]!, 'rss');
    console.log();
    console.log(`Relaygrid RSS per idle connection: ${kb(gateway)} KB (bare uWS ${kb(per(runs[1]!, 'rss'))} KB)  (goal < ${kb(GOAL_BYTES)} KB)  ${verdict(gateway < GOAL_BYTES)}`);
    console.log(`command: npm run bench:ws-memory  (BENCH_CONNECTIONS=${CONNECTIONS} BENCH_CONCURRENCY=${CONCURRENCY})`);
  });
}

runMain(main);
