/**
 * The client side of bench/messenger-fanout.ts and bench/messenger-latency.ts,
 * in a child process of its own so its CPU is not counted in the servers'
 * process (on 2 cores it still competes with them for the machine). Every
 * socket is a `WireSocket` (bench/messenger-support.ts), for Relaygrid and the
 * baselines alike. Requests from the parent (over IPC):
 *
 *   connect  {kind, port, set?, people?, paths?, count?}
 *                                           opens a set of sockets (Relaygrid ones resume and wait for `synced`)
 *   fanout   {kind, frames}                   socket 0 of set `kind` writes every frame at once; answers when every
 *                                             other socket has received one message per frame
 *   latency  {kind, senders, recipients, pairs, rate, …}
 *                                           paced open-loop 1:1 sends; send→msg and send→sent latencies
 *   close    {set}                           closes a set of sockets
 */
import { performance } from 'node:perf_hooks';
import { openMany, relaygridOnline, serveRequests, startsWith, summary, WireSocket, type MessengerPerson } from './messenger-support.js';

export type Kind = 'relaygrid' | 'socketio' | 'uws';

/** The open sockets by set name (fan-out keeps one set per kind open, so rounds can alternate). */
const open = new Map<string, WireSocket[]>();
const socketsOf = (set: string): WireSocket[] => open.get(set) ?? [];

const MSG: Record<Kind, Buffer> = {
  relaygrid: Buffer.from('{"op":"msg"'),
  uws: Buffer.from('{"op":"msg"'),
  socketio: Buffer.from('42["msg"'),
};
const SENT = Buffer.from('{"op":"sent"');
const EIO_PING = Buffer.from('2');

/** Engine.IO over a bare WebSocket: the open packet, then CONNECT to the main namespace (`40`), answered `40{"sid"…}`. */
async function socketIoOnline(port: number): Promise<WireSocket> {
  const ws = await WireSocket.open({ port, path: '/socket.io/?EIO=4&transport=websocket' });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('socket.io: no CONNECT answer within 30 s')), 30_000);
    ws.onText = (data, start, end) => {
      const text = data.toString('utf8', start, end);
      if (text.startsWith('0{')) ws.send('40');
      else if (text.startsWith('40')) {
        clearTimeout(timer);
        resolve();
      }
    };
  });
  return ws;
}

/** Engine.IO pings (`2`) are answered (`3`) whatever else the socket is doing. */
function withPong(kind: Kind, ws: WireSocket, onText: WireSocket['onText']): WireSocket['onText'] {
  if (kind !== 'socketio') return onText;
  return (data, start, end) => {
    if (end - start === 1 && data[start] === EIO_PING[0]) ws.send('3');
    else onText(data, start, end);
  };
}

async function connectAll(args: Record<string, unknown>): Promise<number> {
  const kind = args['kind'] as Kind;
  const port = args['port'] as number;
  const people = args['people'] as MessengerPerson[] | undefined;
  const paths = args['paths'] as string[] | undefined;
  const count = people?.length ?? paths?.length ?? (args['count'] as number);
  const started = performance.now();
  const sockets = await openMany(count, 50, (i) => {
    if (kind === 'relaygrid') return relaygridOnline(port, people![i]!.token, people![i]!.deviceId);
    if (kind === 'socketio') return socketIoOnline(port);
    return WireSocket.open({ port, path: paths?.[i] ?? '/' });
  });
  for (const ws of sockets) ws.onText = withPong(kind, ws, () => undefined);
  open.set((args['set'] as string | undefined) ?? kind, sockets);
  return (performance.now() - started) / 1000;
}

export interface FanoutResult {
  seconds: number;
  deliveries: number;
  complete: boolean;
  sample: string;
}

/** How long a fan-out may take before it counts as incomplete. */
const FANOUT_TIMEOUT_MS = 120_000;

/** Socket 0 sends; every other socket must receive one `msg` per frame. */
function fanout(args: Record<string, unknown>): Promise<FanoutResult> {
  const kind = args['kind'] as Kind;
  const frames = args['frames'] as string[];
  const prefix = MSG[kind];
  const sockets = socketsOf(kind);
  const want = frames.length;
  const receivers = sockets.length - 1;
  const counts = new Uint32Array(sockets.length);
  let done = 0;
  let deliveries = 0;
  let sample = '';
  return new Promise((resolve) => {
    let started = 0;
    const finish = (complete: boolean) => {
      clearTimeout(timer);
      const seconds = (performance.now() - started) / 1000;
      for (const ws of sockets) ws.onText = withPong(kind, ws, () => undefined);
      resolve({ seconds, deliveries, complete, sample });
    };
    const timer = setTimeout(() => finish(false), FANOUT_TIMEOUT_MS);
    sockets.forEach((ws, i) => {
      if (i === 0) {
        ws.onText = withPong(kind, ws, () => undefined);
        return;
      }
      ws.onText = withPong(kind, ws, (data, start, end) => {
        if (!startsWith(data, start, end, prefix)) return;
        deliveries++;
        if (++counts[i]! === want) {
          if (i === 1) sample = data.toString('utf8', start, end);
          if (++done === receivers) finish(true);
        }
      });
    });
    started = performance.now();
    sockets[0]!.sendMany(frames);
  });
}

export interface LatencyPair {
  sender: number;
  recipient: number;
  /** What goes in `to`, and the device addressed (Relaygrid only). */
  to: string;
  device?: string;
}

export interface LatencyResult {
  sent: number;
  delivered: number;
  acked: number;
  seconds: number;
  deliver: { count: number; p50: number; p99: number; max: number };
  ack: { count: number; p50: number; p99: number; max: number };
  /** Largest delay between a message's planned time and its write: the pacer's own lateness. */
  maxLateMs: number;
}

function sendFrame(kind: Kind, pair: LatencyPair, id: string, body: string): string {
  if (kind === 'relaygrid') return `{"op":"send","id":"${id}","to":{"user":"${pair.to}"},"messages":[{"device":"${pair.device}","type":1,"body":"${body}"}]}`;
  return `{"op":"send","id":"${id}","to":"${pair.to}","type":1,"body":"${body}"}`;
}

/**
 * Open loop: message k is due at k / rate and goes to pair k mod P, whenever
 * the previous ones are answered or not. Messages of the first `warmupSeconds`
 * are not recorded. Latency is from the write of `send` to the arrival of the
 * `msg` (and of the `sent` answer), on this process's clock.
 */
async function latency(args: Record<string, unknown>): Promise<LatencyResult> {
  const kind = args['kind'] as Kind;
  const pairs = args['pairs'] as LatencyPair[];
  const rate = args['rate'] as number;
  const seconds = args['seconds'] as number;
  const warmup = args['warmupSeconds'] as number;
  const body = args['body'] as string;
  // Ids differ from run to run: the gateway answers a repeated id as a resend and stores nothing.
  const tag = args['tag'] as string;
  const senders = socketsOf(args['senders'] as string);
  const recipients = socketsOf(args['recipients'] as string);
  const total = Math.round(rate * (seconds + warmup));
  const recordFrom = Math.round(rate * warmup);
  const writtenAt = new Float64Array(total);
  const deliverMs: number[] = [];
  const ackMs: number[] = [];
  const highest = new Map<number, number>();
  let delivered = 0;
  let acked = 0;
  let maxLateMs = 0;
  const indexOf = (text: string) => {
    const m = /"id":"[A-Za-z0-9]+_(\d+)"/.exec(text);
    return m ? Number(m[1]) : -1;
  };
  for (const pair of pairs) {
    const sender = senders[pair.sender]!;
    sender.onText = (data, start, end) => {
      if (!startsWith(data, start, end, SENT)) return;
      const k = indexOf(data.toString('utf8', start, end));
      if (k < 0) return;
      acked++;
      if (k >= recordFrom) ackMs.push(performance.now() - writtenAt[k]!);
    };
    const recipient = recipients[pair.recipient]!;
    recipient.onText = (data, start, end) => {
      if (!startsWith(data, start, end, MSG[kind])) return;
      const now = performance.now();
      const text = data.toString('utf8', start, end);
      const k = indexOf(text);
      if (k < 0) return;
      delivered++;
      if (k >= recordFrom) deliverMs.push(now - writtenAt[k]!);
      const offset = /"offset":(\d+)/.exec(text);
      if (offset) highest.set(pair.recipient, Math.max(highest.get(pair.recipient) ?? 0, Number(offset[1])));
    };
  }
  // A real client acknowledges what it received, in batches: every 100 ms, up to the highest offset.
  const acker =
    kind === 'relaygrid'
      ? setInterval(() => {
          for (const [i, upTo] of highest) recipients[i]?.send(`{"op":"ack","upTo":${upTo}}`);
          highest.clear();
        }, 100)
      : undefined;
  const t0 = performance.now();
  let k = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (k < total && t0 + (k * 1000) / rate <= now) {
        const pair = pairs[k % pairs.length]!;
        maxLateMs = Math.max(maxLateMs, now - (t0 + (k * 1000) / rate));
        writtenAt[k] = performance.now();
        senders[pair.sender]!.send(sendFrame(kind, pair, `${tag}_${k}`, body));
        k++;
      }
      if (k < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const sendSeconds = (performance.now() - t0) / 1000;
  const deadline = performance.now() + 10_000;
  while ((delivered < total || acked < total) && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  clearInterval(acker);
  return { sent: total, delivered, acked, seconds: sendSeconds, deliver: summary(deliverMs), ack: summary(ackMs), maxLateMs };
}

serveRequests({
  connect: connectAll,
  fanout,
  latency,
  close: (args) => {
    const set = args['set'] as string;
    for (const ws of socketsOf(set)) ws.destroy();
    open.delete(set);
    return true;
  },
});
