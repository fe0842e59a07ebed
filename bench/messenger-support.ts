/**
 * Shared parts of the messenger gateway benchmarks (bench/messenger-*.ts):
 *
 * - `WireSocket`: a minimal WebSocket client on node:net. It does the HTTP
 *   upgrade, reads frame headers and hands each text frame to a callback as a
 *   slice of the received chunk, answers pings, and writes text frames with an
 *   all-zero mask (legal, and the payload needs no XOR). Every benchmark uses
 *   this one client for Relaygrid and for its baselines, so the client CPU
 *   per frame is the same on both sides and as low as it can be: the `ws`
 *   package costs several times more per frame, and on 2 cores the clients
 *   then set the rate of every server alike.
 * - messenger users: `messengerPeople()` appends sealed registrations (as
 *   bench/identity-fill.ts does, no argon2) and registers one device each
 *   through the messaging service in this process (Devices.register, the
 *   same call as POST /v1/devices), waiting for the users and devices read models.
 * - a child process speaking a small request/answer protocol over IPC
 *   (`Child`, `serveRequests`), for clients or a gateway outside this process.
 * - latency samples, `/proc/<pid>/status` VmRSS, the sandbox env for children.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { uuidv7 } from '../contracts/ids.js';
import { openIdentity } from '../infra/roles/api.js';
import { startGateway, type RunningGateway } from '../infra/roles/gateway.js';
import { startProjectors } from '../infra/roles/projectors.js';
import type { Runtime } from '../infra/runtime.js';
import { CommandHandler } from '../producers/event-store/command-handler.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { Messaging } from '../producers/messaging/messaging.js';
import { fill, Users } from './identity-fill.js';
import { cpuOfPid, type Child } from './processes.js';
import { cpuSample, cpuSince, fmt, inWindow, rowCount, timed, until, waitQuiet } from './support.js';

export { Child, serveRequests, summary } from './processes.js';

// ---------------------------------------------------------------- a minimal WebSocket client

const OP_TEXT = 0x1;
const OP_CLOSE = 0x8;
const OP_PING = 0x9;

interface WireTarget {
  port: number;
  /** Path and query, e.g. `/v1/ws?device=…`. */
  path: string;
  headers?: Record<string, string>;
}

/** Called with each text frame as `data[start, end)`; the buffer is only valid during the call. */
type OnText = (data: Buffer, start: number, end: number) => void;

function frameHeader(length: number, opcode: number): Buffer {
  // FIN + opcode, MASK bit + length, then the 4-byte mask (zero: the payload goes out as it is).
  if (length < 126) return Buffer.from([0x80 | opcode, 0x80 | length, 0, 0, 0, 0]);
  if (length < 65536) return Buffer.from([0x80 | opcode, 0x80 | 126, length >> 8, length & 255, 0, 0, 0, 0]);
  const h = Buffer.alloc(14);
  h[0] = 0x80 | opcode;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h;
}

export class WireSocket {
  onText: OnText = () => undefined;
  closed = false;
  private pending: Buffer | undefined;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.data(chunk));
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => {
      this.closed = true;
    });
  }

  /** Opens the socket and completes the upgrade; bytes after the 101 answer are frames. */
  static open(target: WireTarget, timeoutMs = 30_000): Promise<WireSocket> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: target.port, noDelay: true });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`upgrade of ${target.path} timed out`));
      }, timeoutMs);
      let head = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('error', onError);
        const status = head.subarray(0, head.indexOf('\r\n')).toString('latin1');
        if (!/^HTTP\/1\.1 101/.test(status)) {
          socket.destroy();
          reject(new Error(`upgrade of ${target.path} refused: ${status}`));
          return;
        }
        const ws = new WireSocket(socket);
        resolve(ws);
        // Frames that came with the answer (Engine.IO's open packet) wait until the caller has set onText.
        const rest = head.subarray(end + 4);
        if (rest.length > 0) setImmediate(() => ws.data(rest));
      };
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      socket.on('data', onData);
      socket.once('error', onError);
      const extra = Object.entries(target.headers ?? {})
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('');
      socket.write(
        `GET ${target.path} HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
      );
    });
  }

  send(text: string): void {
    const payload = Buffer.from(text, 'utf8');
    this.socket.write(Buffer.concat([frameHeader(payload.length, OP_TEXT), payload]));
  }

  /** Several frames in one write (one syscall). */
  sendMany(texts: readonly string[]): void {
    const parts: Buffer[] = [];
    for (const t of texts) {
      const payload = Buffer.from(t, 'utf8');
      parts.push(frameHeader(payload.length, OP_TEXT), payload);
    }
    this.socket.write(Buffer.concat(parts));
  }

  destroy(): void {
    this.closed = true;
    this.socket.destroy();
  }

  private data(chunk: Buffer): void {
    let buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let at = 0;
    while (buf.length - at >= 2) {
      const b0 = buf[at]!;
      let length = buf[at + 1]! & 0x7f;
      let header = 2;
      if (length === 126) {
        if (buf.length - at < 4) break;
        length = buf.readUInt16BE(at + 2);
        header = 4;
      } else if (length === 127) {
        if (buf.length - at < 10) break;
        length = Number(buf.readBigUInt64BE(at + 2));
        header = 10;
      }
      if (buf.length - at < header + length) break;
      const start = at + header;
      const end = start + length;
      const opcode = b0 & 0x0f;
      if (opcode === OP_TEXT) this.onText(buf, start, end);
      else if (opcode === OP_PING) this.socket.write(Buffer.concat([frameHeader(length, 0xa), buf.subarray(start, end)]));
      else if (opcode === OP_CLOSE) this.closed = true;
      at = end;
    }
    if (at < buf.length) {
      buf = buf.subarray(at);
      this.pending = Buffer.from(buf); // copied: the chunk's memory may be reused
    }
  }
}

/** Whether `data[start, end)` begins with `prefix` (compared byte by byte, nothing decoded). */
export function startsWith(data: Buffer, start: number, end: number, prefix: Buffer): boolean {
  if (end - start < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[start + i] !== prefix[i]) return false;
  return true;
}

/** Opens `count` sockets, `concurrency` upgrades at a time. */
export async function openMany(count: number, concurrency: number, open: (i: number) => Promise<WireSocket>): Promise<WireSocket[]> {
  const sockets = new Array<WireSocket>(count);
  await inWindow(count, concurrency, async (i) => {
    sockets[i] = await open(i);
  });
  return sockets;
}

/** A Relaygrid gateway socket that has resumed from nothing and seen `synced`. */
export async function relaygridOnline(port: number, token: string, device: string): Promise<WireSocket> {
  const ws = await WireSocket.open({ port, path: `/v1/ws?device=${encodeURIComponent(device)}`, headers: { authorization: `Bearer ${token}` } });
  const synced = Buffer.from('{"op":"synced"');
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`device ${device}: no synced within 30 s`)), 30_000);
    ws.onText = (data, start, end) => {
      if (startsWith(data, start, end, synced)) {
        clearTimeout(timer);
        ws.onText = () => undefined;
        resolve();
      } else if (startsWith(data, start, end, Buffer.from('{"op":"error"'))) {
        clearTimeout(timer);
        reject(new Error(`device ${device}: ${data.toString('utf8', start, end)}`));
      }
    };
    ws.send('{"op":"resume","epoch":"","offset":0}');
  });
  return ws;
}

// ---------------------------------------------------------------- users and devices

const BODY_BYTES = 100;

/** Base64 of `bytes` random bytes: the ciphertext of every benchmark message. */
export function ciphertext(bytes = BODY_BYTES): string {
  return randomBytes(bytes).toString('base64');
}

export interface MessengerPerson {
  userId: string;
  deviceId: string;
  token: string;
}

/**
 * `count` people with one device each. Registrations are sealed
 * UserRegistered events appended through the event store (bench/identity-fill.ts,
 * no argon2: no password is ever checked here); each device is registered
 * through Messaging.devices.register, what POST /v1/devices calls; the access
 * tokens come from the real AccessTokens (identity.deps.tokens.issue), as a
 * login would hand them out. Waits for the users and devices read models.
 */
export async function messengerPeople(rt: Runtime, count: number, opts: { groupMembers?: boolean } = {}): Promise<{ people: MessengerPerson[]; groupId?: string }> {
  const projectors = startProjectors(rt, ['users', 'devices', 'groups']);
  const handler = new CommandHandler(new EventStore(rt.nats, rt.names, rt.registry), { metrics: rt.metrics });
  const messaging = new Messaging({ handler, db: rt.db, redis: rt.redis });
  const identity = openIdentity(rt, handler);
  try {
    const users = new Users(count);
    const people: MessengerPerson[] = Array.from({ length: count }, (_, i) => ({ userId: users.id(i), deviceId: '', token: '' }));
    let groupId: string | undefined;
    const seconds = await timed(async () => {
      await fill(rt, users, 64);
      await until('the users read model', async () => (await rowCount(rt, 'users')) >= count, 120_000, 100);
      await inWindow(count, 32, async (i) => {
        const p = people[i]!;
        const keys = { name: 'bench', identityKey: ciphertext(33), signedPreKey: { id: 1, publicKey: ciphertext(33), signature: ciphertext(64) }, oneTimePreKeys: [] };
        p.deviceId = (await messaging.devices.register(p.userId, keys, { actor: `user:${p.userId}` })).deviceId;
        p.token = identity.deps.tokens.issue(p.userId, uuidv7(), ['client']);
      });
      await until('the devices read model', async () => (await rowCount(rt, 'devices')) >= count, 120_000, 100);
      if (opts.groupMembers) {
        const creator = people[0]!.userId;
        groupId = (await messaging.groups.create(creator, 'bench group', people.map((p) => p.userId), { actor: `user:${creator}` })).groupId;
        await until('the group_members read model', async () => (await rowCount(rt, 'group_members')) >= count, 120_000, 100);
      }
    });
    console.log(`made ${fmt.int(count)} users with one device each${groupId ? ` and one group of all of them` : ''} in ${fmt.s(seconds)} s (not measured)`);
    return groupId === undefined ? { people } : { people, groupId };
  } finally {
    await projectors.close();
  }
}

/**
 * The runtime with the send limits raised: the defaults (50 sends/s per
 * connection, 600/min per sender and recipient) would set the rate, not the
 * gateway. The buckets are still taken on every send.
 */
function unlimitedSends(rt: Runtime): Runtime {
  return { ...rt, config: { ...rt.config, messaging: { ...rt.config.messaging, sendsPerSecond: 1_000_000, pairSendsPerMinute: 10_000_000 } } };
}

/** A gateway of this process on 127.0.0.1 with the limits raised, and its port. */
export async function benchGateway(rt: Runtime): Promise<RunningGateway & { port: number }> {
  const gw = await startGateway(unlimitedSends(rt), { host: '127.0.0.1', port: 0 });
  return { ...gw, port: Number(new URL(gw.url).port) };
}

// ---------------------------------------------------------------- figures

/** Resident set size of a process in bytes, from /proc/<pid>/status. */
export function rssOf(pid: number): number {
  const line = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return line ? Number(line[1]) * 1024 : NaN;
}


export const kb = (bytes: number) => (bytes / 1024).toFixed(2);

/** CPU cores used during a measured run: this process (the servers), the client child, nats-server. */
export interface Cores {
  serverCores: number;
  clientCores: number;
  natsCores: number;
}

/** Waits for a quiet machine, then runs `fn` and answers its result with the cores each side used meanwhile. */
export async function measured<T>(clients: Child, fn: () => Promise<T>): Promise<T & Cores> {
  await waitQuiet();
  const cpu0 = cpuSample();
  const client0 = cpuOfPid(clients.pid);
  const t = performance.now();
  const result = await fn();
  const wall = (performance.now() - t) / 1000;
  const cpu = cpuSince(cpu0, 1);
  return { ...result, serverCores: cpu.self, clientCores: (cpuOfPid(clients.pid) - client0) / wall, natsCores: cpu.nats };
}

export const coresText = (r: Cores) => `cpu: server process ${r.serverCores.toFixed(2)}, clients ${r.clientCores.toFixed(2)}, nats-server ${r.natsCores.toFixed(2)} cores`;

/**
 * Runs `body`, then closes what it opened, in reverse order, whatever happens:
 * `body(onClose)` registers each closer as soon as it has opened something.
 */
export async function closingAfter(body: (onClose: (close: () => unknown) => void) => Promise<void>): Promise<void> {
  const closers: (() => unknown)[] = [];
  try {
    await body((close) => closers.push(close));
  } finally {
    for (const close of closers.reverse()) await close();
  }
}
