/**
 * The socket-cut step on a real core: how long after a user's removal their
 * open connections are closed, with BENCH_USERS × BENCH_PER_USER connections
 * open through one VLESS inbound of a real V2Ray 4.34 (or Xray) core, and a
 * bare `ss -K` of the same number of sockets as the floor, in the same run.
 *
 *   relaygrid  what the agent does on a removal: driver.removeUser (the gRPC
 *              HandlerService call), then ConnectionTracker.cut (the access
 *              log's connection table → one `ss -K` naming the user's client
 *              endpoints on the inbound's port). Latency = from before the
 *              removal call until every one of the user's client sockets has
 *              seen its close (Node's 'close' event). The other users'
 *              connections must all still be open, and each must still echo a
 *              byte end to end through the core.
 *   raw        the same user's connections (opened again, the user added
 *              back), closed by one `ss -K` whose filter the bench builds from
 *              the client sockets it holds: no gRPC call, no log, no table.
 *              Latency = from before spawning `ss` until every socket saw its
 *              close.
 *   Rounds alternate relaygrid and raw, each on the next user in turn.
 *
 * Clients speak VLESS themselves (request header, then an echo through the
 * core's freedom outbound to a local echo server): no client core between,
 * so the client endpoints are the bench's own sockets. Connections are
 * opened BENCH_OPEN_WINDOW at a time: the core queues access log lines 16
 * deep and drops the rest, so a burst would leave connections unlogged
 * (the bench checks that every one reached the table).
 *
 * Needs root or CAP_NET_ADMIN. No NATS or Postgres.
 *
 * Env: BENCH_USERS (10), BENCH_PER_USER (100), BENCH_ROUNDS (10), BENCH_OPEN_WINDOW (4),
 *      V2RAY_BIN (/usr/bin/v2ray), BENCH_CORE (v2ray|xray).
 */
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { createLogger } from '../infra/logger.js';
import { freePort, LOOPBACK } from '../infra/stack/ports.js';
import { ConnectionTracker } from '../workers/agent/connections/connection-tracker.js';
import { killFilter, SS } from '../workers/agent/connections/socket-killer.js';
import { withAccessLog, withLocalApi } from '../workers/agent/core/local-api.js';
import { ProcessCoreDriver } from '../workers/agent/core/process-driver.js';
import type { CoreConfig } from '../workers/fleet/render/core-config.js';
import { summary } from './processes.js';
import { envInt, fmt, inWindow, table, until } from './support.js';

const USERS = envInt('BENCH_USERS', 10);
const PER_USER = envInt('BENCH_PER_USER', 100);
const ROUNDS = envInt('BENCH_ROUNDS', 10);
const OPEN_WINDOW = envInt('BENCH_OPEN_WINDOW', 4);
const FLAVOUR = process.env['BENCH_CORE'] === 'xray' ? 'xray' : 'v2ray';
const BINARY = process.env['V2RAY_BIN'] ?? (FLAVOUR === 'v2ray' ? '/usr/bin/v2ray' : 'xray');
const TAG = 'vless-bench';
const run = promisify(execFile);
const log = createLogger(process.env['LOG_LEVEL'] ?? 'silent', { bench: 'connection-cut' });

interface User {
  email: string;
  id: string;
  conns: Conn[];
}

interface Conn {
  socket: net.Socket;
  endpoint: string;
  closed: boolean;
}

function uuidBytes(id: string): Buffer {
  return Buffer.from(id.replace(/-/g, ''), 'hex');
}

/** VLESS request: version 0, user id, no addons, TCP to 127.0.0.1:port (address type 1), then the payload. */
function vlessRequest(id: string, port: number, payload: Buffer): Buffer {
  const portBytes = Buffer.alloc(2);
  portBytes.writeUInt16BE(port);
  return Buffer.concat([Buffer.from([0]), uuidBytes(id), Buffer.from([0, 1]), portBytes, Buffer.from([1, 127, 0, 0, 1]), payload]);
}

/** Writes `ping` and resolves once it is echoed back (after the 2-byte VLESS response header on the first answer). */
function echo(socket: net.Socket, first: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = Buffer.alloc(0);
    const want = (first ? 2 : 0) + 4;
    const onClose = () => reject(new Error('closed before the echo'));
    const onData = (chunk: Buffer) => {
      got = Buffer.concat([got, chunk]);
      if (got.length >= want) {
        socket.off('data', onData).off('close', onClose);
        resolve();
      }
    };
    socket.on('data', onData).once('close', onClose);
  });
}

async function openConn(user: User, port: number, echoPort: number): Promise<Conn> {
  const socket = net.connect({ host: LOOPBACK, port });
  await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const conn: Conn = { socket, endpoint: `${LOOPBACK}:${socket.localPort}`, closed: false };
  socket.on('error', () => undefined);
  socket.once('close', () => (conn.closed = true));
  const echoed = echo(socket, true);
  socket.write(vlessRequest(user.id, echoPort, Buffer.from('ping')));
  await echoed;
  return conn;
}

async function stillEchoes(conn: Conn): Promise<boolean> {
  if (conn.closed) return false;
  const echoed = echo(conn.socket, false);
  conn.socket.write('ping');
  return echoed.then(
    () => true,
    () => false,
  );
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'rg-bench-cut-'));
  const echoServer = net.createServer((s) => s.on('error', () => undefined).pipe(s));
  await new Promise<void>((resolve) => echoServer.listen(0, LOOPBACK, resolve));
  const echoPort = (echoServer.address() as net.AddressInfo).port;
  const port = await freePort();
  const apiPort = await freePort();
  const users: User[] = Array.from({ length: USERS }, (_, i) => ({ email: `user-${i}`, id: randomUUID(), conns: [] }));
  const tracker = new ConnectionTracker({ fifoPath: join(dir, 'access-log.fifo'), log });
  const driver = new ProcessCoreDriver({ flavour: FLAVOUR, binary: BINARY, apiPort, logger: log });
  try {
    await tracker.open();
    const config: CoreConfig = {
      log: { loglevel: 'warning' },
      inbounds: [{ tag: TAG, listen: '0.0.0.0', port, protocol: 'vless', settings: { clients: users.map((u) => ({ id: u.id, email: u.email, level: 0 })), decryption: 'none' }, streamSettings: { network: 'tcp', security: 'none' } }],
      outbounds: [{ tag: 'direct', protocol: 'freedom', settings: {} }],
      routing: { domainStrategy: 'AsIs', rules: [] },
    };
    const file = join(dir, 'config.json');
    await writeFile(file, JSON.stringify(withAccessLog(withLocalApi(config, apiPort), tracker.accessLogPath)));
    await driver.start(file);

    const openFor = async (user: User) => {
      const opened: Conn[] = [];
      await inWindow(PER_USER, OPEN_WINDOW, async () => void opened.push(await openConn(user, port, echoPort)));
      user.conns = opened;
      await until(`${user.email}'s connections in the table (if not, the core dropped access lines: its 16-line queue overflowed; lower BENCH_OPEN_WINDOW)`, () => opened.every((c) => tracker.table.endpointsOf(user.email).has(c.endpoint)), 5_000);
    };
    const allClosed = (user: User) => until(`${user.email}'s connections closed`, () => user.conns.every((c) => c.closed), 10_000, 0);
    for (const user of users) await openFor(user);
    console.log(`${FLAVOUR} ${BINARY}: ${fmt.int(USERS * PER_USER)} connections open through one VLESS inbound (${USERS} users × ${PER_USER}); ${fmt.int(tracker.table.size)} in the agent's table`);

    const agent: number[] = [];
    const raw: number[] = [];
    const grpc: number[] = [];
    const cut: number[] = [];
    let othersOk = true;
    for (let round = 0; round < ROUNDS; round++) {
      const user = users[round % USERS]!;
      const others = users.filter((u) => u !== user).flatMap((u) => u.conns);

      // relaygrid: the removal, then the cut.
      const start = performance.now();
      await driver.removeUser(TAG, user.email);
      const removed = performance.now();
      const closed = await tracker.cut([{ port, email: user.email }], () => false);
      const cutDone = performance.now();
      await allClosed(user);
      cut.push(cutDone - removed);
      agent.push(performance.now() - start);
      grpc.push(removed - start);
      const untouched = others.every((c) => !c.closed) && (await Promise.all(others.map(stillEchoes))).every(Boolean);
      othersOk &&= untouched && closed >= PER_USER;
      console.log(`  round ${round + 1} relaygrid  ${user.email}: ${closed} sockets closed in ${fmt.s(agent.at(-1)!)} ms (gRPC removal ${fmt.s(grpc.at(-1)!)} ms); the other ${fmt.int(others.length)} ${untouched ? 'open and echoing' : 'DISTURBED'}`);

      // raw: the same user's connections again, closed by a bare ss -K.
      await driver.addUser(TAG, { email: user.email, level: 0, account: { protocol: 'vless', id: user.id } });
      await openFor(user);
      const filter = killFilter(new Map([[port, user.conns.map((c) => c.endpoint)]]));
      const rawStart = performance.now();
      await run(SS, ['-K', '-tnH', 'state', 'connected', filter]);
      await allClosed(user);
      raw.push(performance.now() - rawStart);
      console.log(`  round ${round + 1} raw        ${user.email}: ${PER_USER} sockets closed in ${fmt.s(raw.at(-1)!)} ms`);
      await openFor(user);
      await tracker.prune([port]);
    }

    const a = summary(agent);
    const r = summary(raw);
    const g = summary(grpc);
    const c = summary(cut);
    console.log();
    console.log(
      table(
        ['close one user’s connections', 'rounds', 'p50 ms', 'p99 ms', 'max ms'],
        [
          ['relaygrid (removal → all closed)', String(a.count), fmt.s(a.p50), fmt.s(a.p99), fmt.s(a.max)],
          ['  of which the gRPC removal', String(g.count), fmt.s(g.p50), fmt.s(g.p99), fmt.s(g.max)],
          ['  of which the cut (table → ss -K returned)', String(c.count), fmt.s(c.p50), fmt.s(c.p99), fmt.s(c.max)],
          ['raw ss -K (spawn → all closed)', String(r.count), fmt.s(r.p50), fmt.s(r.p99), fmt.s(r.max)],
        ],
      ),
    );
    console.log(`relaygrid / raw: p50 ${(a.p50 / r.p50).toFixed(2)}×, p99 ${(a.p99 / r.p99).toFixed(2)}×`);
    console.log(`goal: the user's ${PER_USER} connections closed within 100 ms of the removal (p99 ${fmt.s(a.p99)} ms): ${a.p99 < 100 ? 'met' : 'missed'}; others untouched: ${othersOk ? 'yes' : 'NO'}`);
    if (!othersOk) process.exitCode = 1;
  } finally {
    for (const u of users) for (const c of u.conns) c.socket.destroy();
    tracker.close();
    await driver.stop();
    await new Promise<void>((resolve) => echoServer.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
