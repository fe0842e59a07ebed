/**
 * Group fan-out of the messenger gateway (issue "Speed", 1), and two
 * baselines, in one run on the same machine with the same client sockets:
 *
 *   relaygrid  BENCH_MEMBERS people (1,000), one device each, all members of one
 *              group, every device connected to ONE Relaygrid gateway of this
 *              process (startGateway: uWS, the real send path: parse, rate
 *              buckets, membership, JetStream store, Redis expiry and id
 *              memory, MessageSent event, core NATS publish, uWS topic
 *              publish to the members' sockets). Member 0 writes
 *              BENCH_MESSAGES `{"op":"send","to":{"group":g},"type":3,"body":…}`
 *              frames at once (100-byte ciphertext, 136 base64 characters).
 *   socketio   a Socket.IO 4 server in this process (websocket transport only,
 *              no perMessageDeflate): every socket joins one room; on `send` the
 *              server emits `msg` with the same fields to the room, without the sender.
 *   uws        raw uWebSockets.js in this process: every socket subscribes to
 *              one topic; on a message the server builds the same `msg` frame
 *              and publishes it to the topic (`ws.publish`, which skips the sender).
 *
 * Deliveries/s = messages × receiving members (999) / time from the sender's
 * write until the last member has every message. All sockets are opened by a
 * child process (bench/messenger-clients.ts, one `WireSocket` each), so client
 * CPU is not in the servers' process; on this 2-core VM the clients, this
 * process and nats-server still share the cores, and the clients' CPU per
 * round is printed. All three sets of sockets stay open and rounds alternate
 * the KINDS; the best round of each kind is compared.
 * Goals: relaygrid ≥ 5× socketio, relaygrid ≥ 50 % of uws.
 *
 * Users are sealed registrations appended to the log (no argon2) and devices
 * are registered through the messaging service in-process, then read models
 * are awaited (bench/messenger-support.ts). The gateway's send limits are raised.
 *
 * Env: BENCH_MEMBERS (1000), BENCH_MESSAGES (200), BENCH_ROUNDS (3), BENCH_QUIET_WAIT_MS (60000).
 */
import { createServer } from 'node:http';
import { Server as SocketIoServer } from 'socket.io';
import { io as socketIoClient, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import uWS from 'uWebSockets.js';
import type { FanoutResult, Kind } from './messenger-clients.js';
import { benchGateway, Child, ciphertext, closingAfter, coresText, measured, messengerPeople, type Cores } from './messenger-support.js';
import { envInt, fmt, table, verdict, withBench, machine, runMain } from './support.js';

const MEMBERS = envInt('BENCH_MEMBERS', 1000);
const MESSAGES = envInt('BENCH_MESSAGES', 200);
const ROUNDS = envInt('BENCH_ROUNDS', 3);
const WARMUP_MESSAGES = 20;
const GOAL_VS_SOCKETIO = 5;
const GOAL_VS_UWS = 0.5;
const ROOM = 'bench';
/** BENCH_KINDS=relaygrid runs one kind only (for a profile); the ratios need all three. */
const KINDS = (process.env['BENCH_KINDS'] ?? 'relaygrid,socketio,uws').split(',').map((k): Kind => {
  if (k === 'relaygrid' || k === 'socketio' || k === 'uws') return k;
  throw new Error(`BENCH_KINDS: "${k}" is not relaygrid, socketio or uws`);
});

interface MsgFields {
  id: string;
  type: number;
  body: string;
}

/** The `msg` frame a baseline server sends for one send: the fields Relaygrid's frame has. */
function msgOf(offset: number, f: MsgFields) {
  return { op: 'msg', epoch: 'bench', offset, id: f.id, from: { user: 'sender', device: 'sender' }, group: ROOM, type: f.type, body: f.body, ts: Date.now() };
}

async function startSocketIo(): Promise<{ port: number; close(): Promise<void> }> {
  const http = createServer();
  const io = new SocketIoServer(http, { transports: ['websocket'], perMessageDeflate: false, serveClient: false });
  let offset = 0;
  io.on('connection', (socket) => {
    void socket.join(ROOM);
    socket.on('send', (f: MsgFields) => {
      socket.to(ROOM).emit('msg', msgOf(++offset, f));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const address = http.address();
  if (address === null || typeof address === 'string') throw new Error('socket.io is not listening on a TCP port');
  return { port: address.port, close: () => new Promise<void>((resolve) => void io.close(() => resolve())) };
}

async function startRawUws(): Promise<{ port: number; close(): void }> {
  let offset = 0;
  const app = uWS.App().ws('/*', {
    compression: uWS.DISABLED,
    maxPayloadLength: 256 * 1024,
    maxBackpressure: 64 * 1024 * 1024,
    idleTimeout: 60,
    sendPingsAutomatically: true,
    open: (ws) => {
      ws.subscribe(ROOM);
    },
    message: (ws, message) => {
      const f = JSON.parse(Buffer.from(message).toString('utf8')) as MsgFields;
      ws.publish(ROOM, JSON.stringify(msgOf(++offset, f)), false, false);
    },
  });
  const socket = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('uWS could not listen')))));
  return { port: uWS.us_socket_local_port(socket), close: () => uWS.us_listen_socket_close(socket) };
}

/** Two official socket.io-client sockets: one sends, the other must get the same body back as `msg` (checks the server, and the wire format the bench clients count). */
async function checkSocketIo(port: number): Promise<void> {
  const opts: Partial<ManagerOptions & SocketOptions> = { transports: ['websocket'], forceNew: true, reconnection: false };
  const a = socketIoClient(`http://127.0.0.1:${port}`, opts);
  const b = socketIoClient(`http://127.0.0.1:${port}`, opts);
  try {
    await Promise.all([a, b].map((s) => new Promise<void>((resolve, reject) => (s.once('connect', resolve), s.once('connect_error', reject)))));
    const body = ciphertext();
    const got = new Promise<{ body: string }>((resolve) => b.once('msg', resolve));
    await new Promise((r) => setTimeout(r, 100)); // the joins are asynchronous
    a.emit('send', { id: 'check', type: 3, body });
    const msg = await Promise.race([got, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('socket.io check: no msg')), 5000))]);
    if (msg.body !== body) throw new Error('socket.io check: another body came back');
  } finally {
    a.close();
    b.close();
  }
}

interface Run extends FanoutResult, Cores {
  kind: Kind;
  round: number;
}

const LABEL: Record<Kind, string> = {
  relaygrid: 'Relaygrid gateway (group send)',
  socketio: 'Socket.IO 4 room broadcast',
  uws: 'raw uWS publish',
};

async function main(): Promise<void> {
  await withBench('bench-messenger-fanout', ({ rt }) =>
    closingAfter(async (onClose) => {
      console.log(`machine: ${await machine(rt)}`);
      const { people, groupId } = await messengerPeople(rt, MEMBERS, { groupMembers: true });
      const gateway = await benchGateway(rt);
      onClose(() => gateway.close());
      const socketIo = await startSocketIo();
      onClose(() => socketIo.close());
      const uws = await startRawUws();
      onClose(() => uws.close());
      const clients = new Child('./messenger-clients.js');
      onClose(() => clients.close());
      await checkSocketIo(socketIo.port);
      const ports: Record<Kind, number> = { relaygrid: gateway.port, socketio: socketIo.port, uws: uws.port };
      for (const kind of KINDS) {
        const seconds = await clients.request<number>('connect', kind === 'relaygrid' ? { kind, port: ports[kind], people } : { kind, port: ports[kind], count: MEMBERS });
        console.log(`connected ${fmt.int(MEMBERS)} ${kind} sockets in ${fmt.s(seconds)} s`);
      }
      if (KINDS.includes('relaygrid') && gateway.gateway.connectionCount !== MEMBERS) throw new Error(`the gateway holds ${gateway.gateway.connectionCount} connections, expected ${MEMBERS}`);

      let serial = 0;
      const framesFor = (kind: Kind, count: number): string[] =>
        Array.from({ length: count }, () => {
          const f = { id: `f${++serial}`, type: 3, body: ciphertext() };
          if (kind === 'relaygrid') return JSON.stringify({ op: 'send', id: f.id, to: { group: groupId }, type: f.type, body: f.body });
          if (kind === 'socketio') return `42${JSON.stringify(['send', f])}`;
          return JSON.stringify(f);
        });
      const once = async (kind: Kind, round: number, messages: number): Promise<Run> => {
        const r = await measured(clients, () => clients.request<FanoutResult>('fanout', { kind, frames: framesFor(kind, messages) }));
        const run: Run = { ...r, kind, round };
        const expected = messages * (MEMBERS - 1);
        if (!r.complete || r.deliveries !== expected) throw new Error(`${kind}: ${r.deliveries} of ${expected} deliveries (complete: ${r.complete})`);
        if (kind === 'relaygrid' && !r.sample.includes(`"group":"${groupId}"`)) throw new Error(`relaygrid: unexpected frame ${r.sample}`);
        console.log(
          `  ${kind.padEnd(9)} ${round === 0 ? 'warm-up' : `round ${round}`}  ${fmt.int(r.deliveries)} deliveries in ${fmt.s(r.seconds)} s = ${fmt.int(r.deliveries / r.seconds).padStart(9)}/s` +
            `  ${coresText(run)}`,
        );
        return run;
      };

      console.log(`\nfan-out: ${fmt.int(MESSAGES)} messages to ${fmt.int(MEMBERS - 1)} receiving members per round, ${ROUNDS} rounds alternating the kinds`);
      for (const kind of KINDS) await once(kind, 0, WARMUP_MESSAGES);
      const runs: Run[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const order = KINDS.map((_, i) => KINDS[(i + round - 1) % KINDS.length]!);
        for (const kind of order) runs.push(await once(kind, round, MESSAGES));
      }

      const rate = (r: Run) => r.deliveries / r.seconds;
      const best = (kind: Kind) => runs.filter((r) => r.kind === kind).reduce((a, b) => (rate(b) > rate(a) ? b : a));
      const median = (kind: Kind) => {
        const s = runs.filter((r) => r.kind === kind).map(rate).sort((a, b) => a - b);
        return s[Math.floor(s.length / 2)] ?? NaN;
      };
      console.log();
      console.log(
        table(
          [`fan-out to ${fmt.int(MEMBERS - 1)} members`, 'best deliveries/s', 'median deliveries/s', 'best ms per message', 'server CPU µs/delivery', 'server cores', 'client cores', 'nats cores'],
          KINDS.map((kind) => {
            const b = best(kind);
            return [LABEL[kind], fmt.int(rate(b)), fmt.int(median(kind)), ((b.seconds * 1000) / MESSAGES).toFixed(2), ((b.serverCores * b.seconds * 1e6) / b.deliveries).toFixed(2), b.serverCores.toFixed(2), b.clientCores.toFixed(2), b.natsCores.toFixed(2)];
          }),
        ),
      );
      if (KINDS.length < 3) return;
      const vsSocketIo = rate(best('relaygrid')) / rate(best('socketio'));
      const vsUws = rate(best('relaygrid')) / rate(best('uws'));
      console.log();
      console.log(`Relaygrid / Socket.IO: ${vsSocketIo.toFixed(2)}x (median ${(median('relaygrid') / median('socketio')).toFixed(2)}x)  (goal >= ${GOAL_VS_SOCKETIO}x)  ${verdict(vsSocketIo >= GOAL_VS_SOCKETIO)}`);
      console.log(`Relaygrid / raw uWS:   ${fmt.pct(vsUws)} (median ${fmt.pct(median('relaygrid') / median('uws'))})  (goal >= ${fmt.pct(GOAL_VS_UWS)})  ${verdict(vsUws >= GOAL_VS_UWS)}`);
      console.log(`command: npm run bench:fanout  (BENCH_MEMBERS=${MEMBERS} BENCH_MESSAGES=${MESSAGES} BENCH_ROUNDS=${ROUNDS})`);
      for (const kind of KINDS) await clients.request('close', { set: kind });
    }),
  );
}

runMain(main);
