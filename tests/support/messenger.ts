/**
 * Messenger test clients: users with devices registered over the HTTP API,
 * and a WebSocket client speaking protocol v1 that records every frame, dedups
 * messages by id as a real client must, and acks on request.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import type { Config } from '../../infra/config.js';
import { CLI, sandboxEnv } from './cli.js';
import type { client } from './http.js';

export type Call = ReturnType<typeof client>;
export type Frame = Record<string, unknown> & { op: string };

const b64 = (n: number) => randomBytes(n).toString('base64');

/** A device registration body with fresh random keys: the server checks shape, not cryptography. */
export function deviceKeys(name = 'phone', prekeys = 5, firstId = 1) {
  return {
    name,
    identityKey: b64(33),
    signedPreKey: { id: 1, publicKey: b64(33), signature: b64(64) },
    oneTimePreKeys: Array.from({ length: prekeys }, (_, i) => ({ id: firstId + i, publicKey: b64(33) })),
  };
}

export interface TestPerson {
  userId: string;
  token: string;
  devices: string[];
}

let people = 0;

/** Registers, logs in and adds `devices` devices, through the API like any client. */
export async function person(call: Call, devices = 1): Promise<TestPerson> {
  const email = `m${++people}-${randomUUID().slice(0, 8)}@example.org`;
  const password = 'correct horse battery';
  const ip = `10.9.${Math.floor(people / 250)}.${people % 250}`;
  const reg = await call<{ id: string }>('POST', '/v1/auth/register', { body: { email, password }, ip });
  if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.body)}`);
  const login = await call<{ accessToken: string }>('POST', '/v1/auth/login', { body: { email, password }, ip });
  if (login.status !== 200) throw new Error(`login: ${login.status} ${JSON.stringify(login.body)}`);
  const p: TestPerson = { userId: reg.body.id, token: login.body.accessToken, devices: [] };
  for (let i = 0; i < devices; i++) p.devices.push(await addDevice(call, p.token, `device ${i + 1}`));
  return p;
}

export async function addDevice(call: Call, token: string, name = 'phone'): Promise<string> {
  const res = await call<{ deviceId: string }>('POST', '/v1/devices', { token, body: deviceKeys(name) });
  if (res.status !== 201) throw new Error(`device: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.deviceId;
}

/** A protocol v1 client. `frames` holds everything received, in order. */
export class WsClient {
  readonly frames: Frame[] = [];
  /** Message ids seen, for client-side dedup. */
  readonly seen = new Set<string>();
  /** Messages after dedup, in arrival order. */
  readonly messages: Frame[] = [];
  closeCode: number | undefined;
  closeReason = '';
  private waiters: { test: (f: Frame) => boolean; resolve: (f: Frame) => void; reject: (err: Error) => void }[] = [];
  private closeWaiters: ((code: number) => void)[] = [];

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const frame = JSON.parse((data as Buffer).toString('utf8')) as Frame;
      this.frames.push(frame);
      if (frame.op === 'msg' && !this.seen.has(String(frame['id']))) {
        this.seen.add(String(frame['id']));
        this.messages.push(frame);
      }
      this.waiters = this.waiters.filter((w) => (w.test(frame) ? (w.resolve(frame), false) : true));
    });
    ws.on('close', (code, reason) => {
      this.closeCode = code;
      this.closeReason = reason.toString('utf8');
      for (const w of this.closeWaiters) w(code);
      for (const w of this.waiters) w.reject(new Error(`closed with ${code} ${this.closeReason} while waiting; last frames ${JSON.stringify(this.frames.slice(-5))}`));
      this.waiters = [];
    });
  }

  /** Connects; `via` 'header' sends Authorization, 'protocol' the browser form. */
  static connect(url: string, token: string, device: string, via: 'header' | 'protocol' = 'header'): Promise<WsClient> {
    const target = `${url}?device=${encodeURIComponent(device)}`;
    const ws =
      via === 'header' ? new WebSocket(target, { headers: { authorization: `Bearer ${token}` }, perMessageDeflate: false }) : new WebSocket(target, ['relaygrid.v1', `bearer.${token}`], { perMessageDeflate: false });
    const c = new WsClient(ws);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(c));
      ws.once('error', reject);
    });
  }

  send(frame: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** The first frame (already received or coming) that passes `test`. */
  next(test: (f: Frame) => boolean, timeoutMs = 5000, from = 0): Promise<Frame> {
    const already = this.frames.slice(from).find(test);
    if (already) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${timeoutMs} ms; got ${JSON.stringify(this.frames.slice(-5))}`)), timeoutMs);
      this.waiters.push({
        test,
        resolve: (f) => {
          clearTimeout(timer);
          resolve(f);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
    });
  }

  op(op: string, extra: (f: Frame) => boolean = () => true, timeoutMs = 5000): Promise<Frame> {
    return this.next((f) => f.op === op && extra(f), timeoutMs);
  }

  /** Sends and waits for its `sent` (or error) answer. */
  async request(frame: Record<string, unknown> & { id: string }, timeoutMs = 5000): Promise<Frame> {
    const from = this.frames.length;
    this.send(frame);
    return this.next((f) => (f.op === 'sent' || f.op === 'error') && f['id'] === frame.id, timeoutMs, from);
  }

  closed(timeoutMs = 5000): Promise<number> {
    if (this.closeCode !== undefined) return Promise.resolve(this.closeCode);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('not closed in time')), timeoutMs);
      this.closeWaiters.push((code) => {
        clearTimeout(timer);
        resolve(code);
      });
    });
  }

  close(): void {
    this.ws.close();
  }
}

/** A one-to-one send frame addressing every given device with a random ciphertext. */
export function directSend(to: string, devices: readonly string[], id = randomUUID(), extra: Record<string, unknown> = {}) {
  return { op: 'send', id, to: { user: to }, messages: devices.map((device) => ({ device, type: 1, body: b64(48) })), ...extra };
}

/** A gateway in a child process (`relaygrid gateway`), so a test can SIGKILL it. */
export async function gatewayProcess(config: Config, port: number, extraEnv: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess; kill(signal?: NodeJS.Signals): Promise<void> }> {
  const child = spawn(process.execPath, [CLI, 'gateway'], { env: sandboxEnv(config, { RG_GATEWAY_PORT: String(port), ...extraEnv }), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway did not start: ${output}`)), 15_000);
    child.stdout?.on('data', (d: Buffer) => {
      output += d.toString();
      if (output.includes('gateway listening')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => reject(new Error(`gateway exited with ${code}: ${output}`)));
  });
  return {
    url: `ws://127.0.0.1:${port}/v1/ws`,
    child,
    kill: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}
