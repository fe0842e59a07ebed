/**
 * 1:1 send→deliver latency of the messenger gateway (issue "Speed", 2), with a
 * raw baseline in the same run:
 *
 *   relaygrid  BENCH_PAIRS (50) sender/recipient pairs, one device each. Senders
 *              are connected to gateway A, recipients to gateway B; both are
 *              real gateways (startGateway) in this process, so every message
 *              crosses gateways over core NATS. A send is the real path: parse,
 *              rate buckets, the conversation (devices, blocks, user) from
 *              Postgres (cached 1 s), JetStream store of the device entry,
 *              Redis expiry and id memory, MessageSent event, `sent` to the
 *              sender, core NATS to gateway B, `msg` to the recipient.
 *              Recipients acknowledge every 100 ms (`ack` upTo the highest
 *              offset), as a client does, so the ack path runs too.
 *   raw        two bare uWebSockets.js servers in this process relaying the
 *              same frames over core NATS: server A publishes each frame to
 *              `<ns>.benchrelay.<pair>` and answers `sent`; server B, subscribed to
 *              `<ns>.benchrelay.*`, sends it to the pair's recipient socket.
 *
 * Load: BENCH_RATE (2,000) messages/s in total, round-robin over the pairs (40/s
 * per pair), paced open-loop by a child process (bench/messenger-clients.ts)
 * that holds every socket (`WireSocket`), for BENCH_WARMUP_SECONDS (3) not
 * recorded, then BENCH_SECONDS (10) recorded. Latency is from the client's
 * write of `send` to its receipt of the recipient's `msg`, and of the sender's
 * `sent`, on the child's clock. Every kind runs BENCH_ROUNDS (2) times, alternating.
 * Goal: relaygrid send→msg p99 < 20 ms (in every round).
 *
 * Users and devices as in bench/messenger-fanout.ts; the send limits are raised.
 */
import uWS from 'uWebSockets.js';
import type { LatencyPair, LatencyResult } from './messenger-clients.js';
import { benchGateway, Child, ciphertext, closingAfter, coresText, measured, messengerPeople, type Cores } from './messenger-support.js';
import { envInt, fmt, table, verdict, withBench, machine, runMain } from './support.js';
import type { Runtime } from '../infra/runtime.js';

const PAIRS = envInt('BENCH_PAIRS', 50);
const RATE = envInt('BENCH_RATE', 2000);
const SECONDS = envInt('BENCH_SECONDS', 10);
const WARMUP_SECONDS = envInt('BENCH_WARMUP_SECONDS', 3);
const ROUNDS = envInt('BENCH_ROUNDS', 2);
const GOAL_P99_MS = 20;

type Kind = 'relaygrid' | 'raw';

async function listen(app: uWS.TemplatedApp): Promise<{ port: number; close(): void }> {
  const socket = await new Promise<uWS.us_listen_socket>((resolve, reject) => app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('uWS could not listen')))));
  return { port: uWS.us_socket_local_port(socket), close: () => uWS.us_listen_socket_close(socket) };
}

/** The raw relay: uWS A → core NATS → uWS B, one socket per recipient found by the pair number in its path. */
async function startRawRelay(rt: Runtime): Promise<{ senderPort: number; recipientPort: number; close(): void }> {
  const nc = rt.nats.nc;
  const prefix = `${rt.names.namespace}.benchrelay`;
  const options = { compression: uWS.DISABLED, maxPayloadLength: 256 * 1024, idleTimeout: 60, sendPingsAutomatically: true };
  const a = uWS.App().ws('/*', {
    ...options,
    message: (ws, message) => {
      const text = Buffer.from(message).toString('utf8');
      const f = JSON.parse(text) as { id: string; to: string };
      nc.publish(`${prefix}.${f.to}`, text);
      ws.send(`{"op":"sent","id":"${f.id}","ts":${Date.now()}}`, false, false);
    },
  });
  const recipients = new Map<string, uWS.WebSocket<{ pair: string }>>();
  const b = uWS.App().ws<{ pair: string }>('/*', {
    ...options,
    upgrade: (res, req, context) => {
      res.upgrade({ pair: req.getUrl().slice(1) }, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context);
    },
    open: (ws) => {
      recipients.set(ws.getUserData().pair, ws);
    },
    close: (ws) => {
      recipients.delete(ws.getUserData().pair);
    },
  });
  const sub = nc.subscribe(`${prefix}.*`, {
    callback: (err, msg) => {
      if (err) return;
      const pair = msg.subject.slice(prefix.length + 1);
      // The frame a recipient gets: the send with op msg, as the gateway turns a stored entry into a frame by concatenation.
      recipients.get(pair)?.send(`{"op":"msg",${msg.string().slice('{"op":"send",'.length)}`, false, false);
    },
  });
  await nc.flush();
  const [la, lb] = await Promise.all([listen(a), listen(b)]);
  return {
    senderPort: la.port,
    recipientPort: lb.port,
    close: () => {
      sub.unsubscribe();
      la.close();
      lb.close();
    },
  };
}

interface Run extends LatencyResult, Cores {
  kind: Kind;
  round: number;
}

const LABEL: Record<Kind, string> = {
  relaygrid: 'Relaygrid, gateway A → gateway B',
  raw: 'raw uWS → NATS core → uWS',
};

async function main(): Promise<void> {
  await withBench('bench-messenger-latency', ({ rt }) =>
    closingAfter(async (onClose) => {
      console.log(`machine: ${await machine(rt)}`);
      const { people } = await messengerPeople(rt, 2 * PAIRS);
      const gwA = await benchGateway(rt);
      onClose(() => gwA.close());
      const gwB = await benchGateway(rt);
      onClose(() => gwB.close());
      const raw = await startRawRelay(rt);
      onClose(() => raw.close());
      const clients = new Child('./messenger-clients.js');
      onClose(() => clients.close());
      const senders = people.slice(0, PAIRS);
      const recipients = people.slice(PAIRS);
      await clients.request('connect', { kind: 'relaygrid', set: 'relaygrid-senders', port: gwA.port, people: senders });
      await clients.request('connect', { kind: 'relaygrid', set: 'relaygrid-recipients', port: gwB.port, people: recipients });
      await clients.request('connect', { kind: 'uws', set: 'raw-senders', port: raw.senderPort, count: PAIRS });
      await clients.request('connect', { kind: 'uws', set: 'raw-recipients', port: raw.recipientPort, paths: recipients.map((_, i) => `/${i}`) });
      console.log(`connected ${PAIRS} senders to gateway A and ${PAIRS} recipients to gateway B, and as many raw sockets`);

      const pairsOf = (kind: Kind): LatencyPair[] =>
        recipients.map((r, i) => (kind === 'relaygrid' ? { sender: i, recipient: i, to: r.userId, device: r.deviceId } : { sender: i, recipient: i, to: String(i) }));
      const body = ciphertext();
      const once = async (kind: Kind, round: number): Promise<Run> => {
        const r = await measured(clients, () => clients.request<LatencyResult>('latency', {
          kind: kind === 'relaygrid' ? 'relaygrid' : 'uws',
          senders: `${kind}-senders`,
          recipients: `${kind}-recipients`,
          pairs: pairsOf(kind),
          rate: RATE,
          seconds: SECONDS,
          warmupSeconds: WARMUP_SECONDS,
          body,
          tag: `${kind}${round}`,
        }));
        const run: Run = { ...r, kind, round };
        if (r.delivered !== r.sent || r.acked !== r.sent) throw new Error(`${kind}: ${r.sent} sent, ${r.delivered} delivered, ${r.acked} answered`);
        console.log(
          `  ${kind.padEnd(9)} round ${round}  ${fmt.int(r.sent)} messages in ${fmt.s(r.seconds)} s  send→msg p50 ${r.deliver.p50.toFixed(2)} ms p99 ${r.deliver.p99.toFixed(2)} ms max ${r.deliver.max.toFixed(1)} ms` +
            `  send→sent p50 ${r.ack.p50.toFixed(2)} p99 ${r.ack.p99.toFixed(2)} ms  pacer late ≤ ${r.maxLateMs.toFixed(1)} ms  ${coresText(run)}`,
        );
        return run;
      };

      console.log(`\nlatency: ${fmt.int(RATE)} messages/s over ${PAIRS} pairs, ${WARMUP_SECONDS} s warm-up + ${SECONDS} s recorded, ${ROUNDS} rounds`);
      const runs: Run[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const order: Kind[] = round % 2 === 1 ? ['relaygrid', 'raw'] : ['raw', 'relaygrid'];
        for (const kind of order) runs.push(await once(kind, round));
      }
      console.log();
      console.log(
        table(
          ['1:1 at ' + fmt.int(RATE) + ' msg/s', 'round', 'msg p50 ms', 'msg p99 ms', 'msg max ms', 'sent p50 ms', 'sent p99 ms', 'server cores', 'client cores', 'nats cores'],
          runs
            .sort((x, y) => x.kind.localeCompare(y.kind) || x.round - y.round)
            .map((r) => [
              LABEL[r.kind],
              String(r.round),
              r.deliver.p50.toFixed(2),
              r.deliver.p99.toFixed(2),
              r.deliver.max.toFixed(1),
              r.ack.p50.toFixed(2),
              r.ack.p99.toFixed(2),
              r.serverCores.toFixed(2),
              r.clientCores.toFixed(2),
              r.natsCores.toFixed(2),
            ]),
        ),
      );
      const worst = Math.max(...runs.filter((r) => r.kind === 'relaygrid').map((r) => r.deliver.p99));
      const rawWorst = Math.max(...runs.filter((r) => r.kind === 'raw').map((r) => r.deliver.p99));
      console.log();
      console.log(`Relaygrid send→msg p99, worst round: ${worst.toFixed(2)} ms (raw relay ${rawWorst.toFixed(2)} ms)  (goal < ${GOAL_P99_MS} ms)  ${verdict(worst < GOAL_P99_MS)}`);
      console.log(`command: npm run bench:latency  (BENCH_PAIRS=${PAIRS} BENCH_RATE=${RATE} BENCH_SECONDS=${SECONDS} BENCH_WARMUP_SECONDS=${WARMUP_SECONDS} BENCH_ROUNDS=${ROUNDS})`);
    }),
  );
}

runMain(main);
