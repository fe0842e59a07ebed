/**
 * Identity speed (issue 3), both parts in one run:
 *
 * 1. Authenticated reads: requests/s over real HTTP on loopback against one
 *    fastify app with two routes answering the same small JSON, behind the
 *    real `authentication(app, identity.auth)` hook of producers/api:
 *
 *      auth:  GET /auth, config.access ['client']: the onRequest hook parses
 *             `Authorization: Bearer …` and calls Identity.auth.authenticateToken (synchronous for JWTs)
 *             = fast-jwt HS256 verify (AccessTokens' 10,000-token cache) + the in-memory
 *             revocation check (a started Revocations) + the role check
 *      raw:   GET /raw, config.access 'public': the same hook returns at once
 *
 *    Both get the same request bytes (the raw route ignores the bearer). The
 *    tokens are issued by the real AccessTokens of the Identity, one per
 *    connection, so after the first request each check is a cache hit, as for
 *    a client reusing its access token. A third variant, `auth, cold cache`,
 *    cycles through 2 × 10,000 distinct tokens so the cache never hits: every
 *    request pays the full HMAC-SHA256 and claims parsing (informative, no goal).
 *
 *    The app is bare fastify (no request tracing, metrics or OpenAPI, which
 *    both routes would pay alike), so the ratio is not diluted by other work.
 *    The load generator runs in a worker thread of this process with
 *    BENCH_CONNECTIONS keep-alive connections, one request in flight each:
 *    a minimal HTTP/1.1 client on node:net (node:http's client costs more CPU
 *    per request than the fastify server, and the generator would then set
 *    the rate for both routes: the server was then 75 % busy and the ratio
 *    meaningless). The generator, the server and the idle NATS/Redis
 *    share this VM's 2 cores, so the absolute figures are a floor. Each run
 *    prints the server thread's event-loop utilisation and its CPU (from
 *    /proc/self/task/<pid>/stat): about 1.0 core means the server, not the
 *    generator, sets the rate. After the HTTP runs the bench also times
 *    Authentication.authenticateToken alone (no HTTP) on the same tokens.
 *    Each variant is warmed up for 1 s, then the variants alternate for
 *    BENCH_ROUNDS rounds of BENCH_SECONDS each; best and median are printed.
 *    Goal: auth ≥ 80 % of raw requests/s (best against best).
 *
 * 2. Login latency: BENCH_LOGINS sequential (concurrency 1) calls of
 *    Identity.auth.login({ email, password }, { ip, device }) over
 *    BENCH_LOGIN_USERS users registered through Identity.accounts.register,
 *    with argon2id at OWASP parameters (m = 19 MiB, t = 2, p = 1). A login is
 *    2 rate-limit INCRs + a lockout read (Redis), the email reservation, the
 *    user aggregate and the person key (NATS KV/JetStream, Postgres), the
 *    argon2 verify, a StartSession append (JetStream) and a refresh session
 *    (Redis). Baseline: the raw @node-rs/argon2 verify of the same stored hash,
 *    timed right after each login, in the same run. Every login comes from
 *    its own IP and users rotate; the per-account limit (10/min by default)
 *    is raised for the bench (the INCRs still run), since 200 logins over 20
 *    users within a minute would pass it.
 *
 * Env: BENCH_SECONDS (5), BENCH_ROUNDS (3), BENCH_CONNECTIONS (64),
 *      BENCH_LOGIN_USERS (20), BENCH_LOGINS (200),
 *      BENCH_QUIET_WAIT_MS (60000).
 */
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import Fastify from 'fastify';
import { verify as argon2Verify } from '@node-rs/argon2';
import { uuidv7 } from '../contracts/ids.js';
import { authentication } from '../producers/api/authenticate.js';
import { errorHandler } from '../producers/api/errors.js';
import { CommandHandler } from '../producers/event-store/command-handler.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { open } from '../producers/identity/crypto/sealing.js';
import { Identity } from '../producers/identity/identity.js';
import { ARGON2_PARAMS } from '../producers/identity/passwords.js';
import { requireMasterKey } from '../infra/config.js';
import { envInt, fmt, machine, table, verdict, waitQuiet, withBench, runMain } from './support.js';
import { cpuOfStat, percentile } from './processes.js';

const SECONDS = envInt('BENCH_SECONDS', 5);
const ROUNDS = envInt('BENCH_ROUNDS', 3);
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 64);
const LOGIN_USERS = envInt('BENCH_LOGIN_USERS', 20);
const LOGINS = envInt('BENCH_LOGINS', 200);
const LOGIN_WARMUP = 5;
/** Authenticated reads must reach this share of the unauthenticated route's requests/s. */
const GOAL_RATIO = 0.8;
/** AccessTokens caches 10,000 verified tokens; cycling through twice as many never hits it. */
const COLD_TOKENS = 20_000;

type Kind = 'raw' | 'auth' | 'auth-cold';

const LABEL: Record<Kind, string> = {
  raw: 'raw: public route, no auth',
  auth: 'auth: JWT check, cached',
  'auth-cold': 'auth, cold cache (info)',
};

/** What the main thread asks the load generator for. */
interface LoadJob {
  port: number;
  path: string;
  tokens: string[];
  seconds: number;
  connections: number;
}

interface LoadResult {
  requests: number;
  failures: number;
  /** The first unexpected status or error, for the message. */
  firstFailure: string | null;
  seconds: number;
  p50: number;
  p99: number;
}

interface Run extends LoadResult {
  kind: Kind;
  round: number;
  /** Event-loop utilisation of the server's thread, 0..1. */
  serverElu: number;
  /** CPU seconds of the server's thread (this process's main thread) and of the rest of the process (the generator) during the run. */
  serverCpu: number;
  otherCpu: number;
}

const BODY = { status: 'ok', items: [{ id: 1, name: 'relay-a' }] } as const;

/** CPU seconds (user + system) of one thread of this process. */
function threadCpu(tid: number): number {
  return cpuOfStat(`/proc/self/task/${tid}/stat`);
}

function processCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Latencies in ms, kept in a growable typed array so a run of ~10^5 requests allocates little. */
class Samples {
  private data = new Float64Array(1 << 16);
  length = 0;

  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }

  sorted(): Float64Array {
    return this.data.slice(0, this.length).sort();
  }
}

// ---------------------------------------------------------------- load generator (worker thread)

/** One request in flight per connection, on raw sockets: request bytes prebuilt, responses framed by Content-Length. */
function socketLoad(job: LoadJob): Promise<LoadResult> {
  const requests = job.tokens.map((t) => Buffer.from(`GET ${job.path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${t}\r\n\r\n`, 'latin1'));
  const samples = new Samples();
  let next = 0;
  let failures = 0;
  let firstFailure: string | null = null;
  const start = performance.now();
  const deadline = start + job.seconds * 1000;
  const one = () =>
    new Promise<void>((resolve, reject) => {
      const socket = connect({ port: job.port, host: '127.0.0.1', noDelay: true });
      let pending: Buffer = Buffer.alloc(0);
      let sentAt = 0;
      const send = () => {
        sentAt = performance.now();
        socket.write(requests[next++ % requests.length]!);
      };
      socket.on('connect', send);
      socket.on('error', reject);
      socket.on('data', (chunk: Buffer) => {
        pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
        const headerEnd = pending.indexOf('\r\n\r\n');
        if (headerEnd < 0) return;
        const head = pending.toString('latin1', 0, headerEnd);
        const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN);
        if (!Number.isFinite(length)) return reject(new Error(`response without content-length: ${head}`));
        const total = headerEnd + 4 + length;
        if (pending.length < total) return;
        const now = performance.now();
        samples.push(now - sentAt);
        if (!head.startsWith('HTTP/1.1 200')) {
          failures++;
          firstFailure ??= `${head.split('\r\n')[0]} ${pending.toString('utf8', headerEnd + 4, total)}`;
        }
        pending = pending.subarray(total);
        if (now < deadline) send();
        else socket.end(() => resolve());
      });
    });
  return Promise.all(Array.from({ length: job.connections }, one)).then(() => {
    const sorted = samples.sorted();
    return { requests: samples.length, failures, firstFailure, seconds: (performance.now() - start) / 1000, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99) };
  });
}

function generator(): void {
  const port = parentPort;
  if (!port) throw new Error('the load generator must run in a worker thread');
  port.on('message', (job: LoadJob | 'exit') => {
    if (job === 'exit') return port.close();
    socketLoad(job).then(
      (result) => port.postMessage({ ok: true, result }),
      (err: unknown) => port.postMessage({ ok: false, error: String(err) }),
    );
  });
}

/** The main thread's handle on the generator worker: one job at a time. */
class LoadGenerator {
  private readonly worker = new Worker(new URL(import.meta.url), { workerData: { role: 'load-generator' } });

  run(job: LoadJob): Promise<LoadResult> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.worker.once('error', onError);
      this.worker.once('message', (msg: { ok: true; result: LoadResult } | { ok: false; error: string }) => {
        this.worker.off('error', onError);
        if (msg.ok) resolve(msg.result);
        else reject(new Error(`load generator: ${msg.error}`));
      });
      this.worker.postMessage(job);
    });
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

// ---------------------------------------------------------------- main thread

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const rate = (r: LoadResult) => r.requests / r.seconds;
const ms = (n: number) => n.toFixed(2);
const perRequest = (cpuSeconds: number, r: LoadResult) => ((cpuSeconds / r.requests) * 1e6).toFixed(1);

/** One IP per login (10.x.y.z), so the per-IP limit never sees a second attempt. */
function ipOf(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

async function main(): Promise<void> {
  await withBench('bench-auth', async ({ rt }) => {
    const handler = new CommandHandler(new EventStore(rt.nats, rt.names, rt.registry), { metrics: rt.metrics });
    const identity = new Identity({
      handler,
      db: rt.db,
      redis: rt.redis,
      nats: rt.nats,
      masterKey: requireMasterKey(rt.config),
      // Only the per-account login limit matters here (see the header); the per-IP one is left as configured.
      auth: { ...rt.config.auth, loginPerAccountPerMinute: 1_000_000 },
      log: rt.log,
    });
    await identity.start();
    const app = Fastify({ logger: false });
    const generator = new LoadGenerator();
    try {
      console.log(`machine: ${await machine(rt)}`);

      // ---- users (not measured)
      const users = Array.from({ length: LOGIN_USERS }, (_, i) => ({
        email: `bench-${i.toString().padStart(4, '0')}@bench.relaygrid.test`,
        password: `bench-password-${i.toString().padStart(4, '0')}-correct-horse`,
        userId: '',
      }));
      const registerStart = performance.now();
      for (const u of users) u.userId = (await identity.accounts.register({ email: u.email, password: u.password, displayName: 'Bench User' })).userId;
      console.log(`registered ${users.length} users in ${fmt.s((performance.now() - registerStart) / 1000)} s`);

      // ---- part 1: authenticated reads over HTTP
      app.setErrorHandler(errorHandler);
      authentication(app, identity.auth);
      app.get('/raw', { config: { access: 'public' } }, () => BODY);
      app.get('/auth', { config: { access: ['client'] } }, () => BODY);
      await app.listen({ port: 0, host: '127.0.0.1' });
      const address = app.server.address();
      if (address === null || typeof address === 'string') throw new Error('fastify is not listening on a TCP port');
      const port = address.port;

      // The token a real login hands out, plus one per connection from the same signer.
      const first = users[0]!;
      const login = await identity.auth.login({ email: first.email, password: first.password }, { ip: '10.255.255.254', device: 'bench' });
      const warmTokens = [
        login.accessToken,
        ...Array.from({ length: CONNECTIONS - 1 }, (_, i) => identity.deps.tokens.issue(users[(i + 1) % users.length]!.userId, uuidv7(), ['client'])),
      ];
      const coldTokens = Array.from({ length: COLD_TOKENS }, (_, i) => identity.deps.tokens.issue(users[i % users.length]!.userId, uuidv7(), ['client'], Date.now() + i));

      // Sanity: the same body on both routes, and the auth route really refuses without a valid token.
      const check = async (path: string, headers: Record<string, string>) => {
        const res = await app.inject({ method: 'GET', url: path, headers });
        return `${res.statusCode} ${res.body}`;
      };
      const okRaw = await check('/raw', {});
      const okAuth = await check('/auth', { authorization: `Bearer ${login.accessToken}` });
      const noToken = await check('/auth', {});
      const badToken = await check('/auth', { authorization: `Bearer ${login.accessToken.slice(0, -2)}xx` });
      if (okRaw !== okAuth || !okRaw.startsWith('200 ')) throw new Error(`routes differ: raw "${okRaw}", auth "${okAuth}"`);
      if (!noToken.startsWith('401 ') || !badToken.startsWith('401 ')) throw new Error(`the auth route did not refuse: "${noToken}", "${badToken}"`);

      const jobFor = (kind: Kind, seconds: number): LoadJob => ({
        port,
        path: kind === 'raw' ? '/raw' : '/auth',
        tokens: kind === 'auth-cold' ? coldTokens : warmTokens,
        seconds,
        connections: CONNECTIONS,
      });
      const once = async (kind: Kind, round: number, seconds: number): Promise<Run> => {
        await waitQuiet();
        const elu = performance.eventLoopUtilization();
        const server0 = threadCpu(process.pid);
        const process0 = processCpu();
        const result = await generator.run(jobFor(kind, seconds));
        const serverElu = performance.eventLoopUtilization(elu).utilization;
        const serverCpu = threadCpu(process.pid) - server0;
        const otherCpu = processCpu() - process0 - serverCpu;
        if (result.failures > 0) throw new Error(`${kind}: ${result.failures} of ${result.requests} requests failed, first: ${result.firstFailure}`);
        const run = { ...result, kind, round, serverElu, serverCpu, otherCpu };
        console.log(
          `  ${kind.padEnd(9)} ${round === 0 ? 'warm-up' : `round ${round}`}  ${fmt.int(run.requests).padStart(8)} requests  ${fmt.s(run.seconds)} s  ${fmt.int(rate(run)).padStart(7)} req/s  p50 ${ms(run.p50)} ms  p99 ${ms(run.p99)} ms  server: loop ${fmt.pct(serverElu)}, ${(serverCpu / run.seconds).toFixed(2)} cores, ${perRequest(serverCpu, run)} µs/req; generator ${(otherCpu / run.seconds).toFixed(2)} cores`,
        );
        return run;
      };

      const kinds: Kind[] = ['raw', 'auth', 'auth-cold'];
      console.log(`\nauthenticated reads: ${CONNECTIONS} connections (raw-socket client in a worker thread), ${SECONDS} s per run, ${ROUNDS} rounds`);
      for (const kind of kinds) await once(kind, 0, 1);
      const runs: Run[] = [];
      for (let r = 1; r <= ROUNDS; r++) {
        // Rotate the order so no variant always runs first after the pause.
        const order = kinds.map((_, i) => kinds[(i + r - 1) % kinds.length]!);
        for (const kind of order) runs.push(await once(kind, r, SECONDS));
      }
      const best = (kind: Kind) => runs.filter((r) => r.kind === kind).reduce((a, b) => (rate(b) > rate(a) ? b : a));
      const med = (kind: Kind) => median(runs.filter((r) => r.kind === kind).map(rate));
      const rawBest = rate(best('raw'));
      const rawMedian = med('raw');

      // One check without HTTP, on the same tokens: what the hook adds before any indirect cost.
      const checkCost = (list: readonly string[], calls: number): number => {
        for (let i = 0; i < list.length; i++) identity.auth.authenticateToken(list[i]!);
        const t = performance.now();
        for (let i = 0; i < calls; i++) identity.auth.authenticateToken(list[i % list.length]!);
        return ((performance.now() - t) * 1000) / calls;
      };
      const checkCached = checkCost(warmTokens, 200_000);
      const checkCold = checkCost(coldTokens, 2 * COLD_TOKENS);

      // ---- part 2: login latency
      console.log(`\nlogins: ${LOGINS} sequential over ${users.length} users, argon2id m=${ARGON2_PARAMS.memoryCost} KiB t=${ARGON2_PARAMS.timeCost} p=${ARGON2_PARAMS.parallelism}`);
      const storedHashes = await Promise.all(
        users.map(async (u) => {
          const state = await identity.deps.loadUser(u.userId);
          const key = await identity.deps.keys.get(u.userId);
          if (!key || !state.passwordHashSealed) throw new Error(`user ${u.userId} has no stored password`);
          return open(key, u.userId, state.passwordHashSealed).toString('utf8');
        }),
      );
      await waitQuiet();
      const loginMs = new Samples();
      const verifyMs = new Samples();
      for (let i = -LOGIN_WARMUP; i < LOGINS; i++) {
        const n = i + LOGIN_WARMUP;
        const u = users[n % users.length]!;
        let t = performance.now();
        const tokens = await identity.auth.login({ email: u.email, password: u.password }, { ip: ipOf(n), device: 'bench' });
        const loginTook = performance.now() - t;
        if (tokens.userId !== u.userId) throw new Error(`login of ${u.email} answered user ${tokens.userId}`);
        t = performance.now();
        if (!(await argon2Verify(storedHashes[n % users.length]!, u.password))) throw new Error('argon2 verify of the stored hash failed');
        const verifyTook = performance.now() - t;
        if (i < 0) continue;
        loginMs.push(loginTook);
        verifyMs.push(verifyTook);
      }
      const logins = loginMs.sorted();
      const verifies = verifyMs.sorted();

      // ---- report
      console.log();
      console.log(
        table(
          ['authenticated reads', 'best req/s', 'median req/s', 'best / raw', 'median / raw', 'p50 ms', 'p99 ms', 'server thread cores', 'server CPU µs/req'],
          kinds.map((kind) => {
            const b = best(kind);
            return [
              LABEL[kind],
              fmt.int(rate(b)),
              fmt.int(med(kind)),
              fmt.pct(rate(b) / rawBest),
              fmt.pct(med(kind) / rawMedian),
              ms(b.p50),
              ms(b.p99),
              (b.serverCpu / b.seconds).toFixed(2),
              perRequest(b.serverCpu, b),
            ];
          }),
        ),
      );
      console.log(`one check in-process (Authentication.authenticateToken, no HTTP): cached ${checkCached.toFixed(2)} µs, cold ${checkCold.toFixed(2)} µs`);
      console.log();
      const loginRow = (label: string, s: Float64Array) => [label, fmt.int(s.length), ms(percentile(s, 0.5)), ms(percentile(s, 0.99)), ms(s[s.length - 1] ?? NaN)];
      console.log(
        table(
          ['login latency (concurrency 1)', 'count', 'p50 ms', 'p99 ms', 'max ms'],
          [loginRow('raw argon2id verify (same hash)', verifies), loginRow('Identity.auth.login', logins)],
        ),
      );
      console.log();
      const ratio = rate(best('auth')) / rawBest;
      console.log(`ratio auth / raw (best): ${fmt.pct(ratio)}, median: ${fmt.pct(med('auth') / rawMedian)}  (goal >= ${fmt.pct(GOAL_RATIO)})  ${verdict(ratio >= GOAL_RATIO)}`);
      console.log(
        `login beyond argon2 (p50 login - p50 verify): ${ms(percentile(logins, 0.5) - percentile(verifies, 0.5))} ms; login p99 ${ms(percentile(logins, 0.99))} ms (no numeric goal)`,
      );
    } finally {
      await generator.close();
      await app.close();
      await identity.stop();
    }
  });
}

if (isMainThread) {
  runMain(main);
} else if ((workerData as { role?: string } | null)?.role === 'load-generator') {
  generator();
}
