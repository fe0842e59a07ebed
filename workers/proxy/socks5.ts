/**
 * SOCKS5 (RFC 1928) with username/password authentication (RFC 1929), or
 * none for a client IP on a user's allowlist. CONNECT only: BIND and UDP
 * ASSOCIATE are answered "command not supported" (0x07). Anything malformed
 * closes that connection with the protocol's error reply, never more.
 */
import type net from 'node:net';
import type { Logger } from '../../infra/logger.js';
import type { ProxyGate, Refusal } from './gate.js';
import { tunnel } from './relay.js';

/** RFC 1928 and RFC 1929 code points. */
const [VERSION, AUTH_VERSION, METHOD_NONE, METHOD_PASSWORD, NO_METHOD, CMD_CONNECT] = [0x05, 0x01, 0x00, 0x02, 0xff, 0x01] as const;
export const REPLY = { ok: 0x00, failure: 0x01, notAllowed: 0x02, networkUnreachable: 0x03, hostUnreachable: 0x04, refused: 0x05, ttlExpired: 0x06, commandNotSupported: 0x07, addressNotSupported: 0x08 } as const;
const HANDSHAKE_TIMEOUT_MS = 10_000;

class ProtocolError extends Error {
  constructor(
    message: string,
    readonly reply?: Buffer,
  ) {
    super(message);
  }
}

/** Reads exact byte counts off a socket during the handshake. */
class Reader {
  private buf = Buffer.alloc(0);
  private want: { n: number; resolve: (b: Buffer) => void; reject: (e: Error) => void } | null = null;
  private ended: Error | null = null;

  constructor(private readonly socket: net.Socket) {
    socket.on('data', this.onData);
    socket.once('end', () => this.fail(new ProtocolError('the client closed mid-handshake')));
    socket.once('close', () => this.fail(new ProtocolError('the client closed mid-handshake')));
  }

  private readonly onData = (chunk: Buffer) => {
    this.buf = Buffer.concat([this.buf, chunk]);
    // The handshake is small: a client sending far more before the reply is not speaking SOCKS5.
    if (this.buf.length > 4_096) this.fail(new ProtocolError('handshake too long'));
    this.serve();
  };

  private fail(err: Error): void {
    this.ended ??= err;
    const want = this.want;
    this.want = null;
    want?.reject(err);
  }

  private serve(): void {
    if (this.want && this.buf.length >= this.want.n) {
      const { n, resolve } = this.want;
      this.want = null;
      const out = this.buf.subarray(0, n);
      this.buf = this.buf.subarray(n);
      resolve(out);
    }
  }

  read(n: number): Promise<Buffer> {
    if (this.ended) return Promise.reject(this.ended);
    return new Promise((resolve, reject) => {
      this.want = { n, resolve, reject };
      this.serve();
    });
  }

  /** Stops reading; answers what came after the handshake (the client's first payload bytes). */
  detach(): Buffer {
    this.socket.removeListener('data', this.onData);
    this.socket.pause();
    return this.buf;
  }
}

function reply(code: number): Buffer {
  // BND.ADDR 0.0.0.0:0: clients of CONNECT do not use it.
  return Buffer.from([VERSION, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}

function refusalReply(r: Refusal): number {
  return r.kind === 'location' || r.kind === 'connections' ? REPLY.notAllowed : REPLY.failure;
}

function connectErrorReply(err: NodeJS.ErrnoException): number {
  switch (err.code) {
    case 'ECONNREFUSED':
      return REPLY.refused;
    case 'ENETUNREACH':
      return REPLY.networkUnreachable;
    case 'EHOSTUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return REPLY.hostUnreachable;
    case 'ETIMEDOUT':
      return REPLY.ttlExpired;
    default:
      return REPLY.failure;
  }
}

async function address(r: Reader): Promise<{ host: string; port: number }> {
  const [, cmd, , atyp] = await r.read(4);
  let host: string;
  if (atyp === 0x01) host = [...(await r.read(4))].join('.');
  else if (atyp === 0x03) {
    const [len] = await r.read(1);
    if (!len) throw new ProtocolError('empty domain name', reply(REPLY.addressNotSupported));
    host = (await r.read(len)).toString('latin1');
  } else if (atyp === 0x04) {
    const b = await r.read(16);
    host = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2).toString(16)).join(':');
  } else throw new ProtocolError(`address type ${atyp}`, reply(REPLY.addressNotSupported));
  const port = (await r.read(2)).readUInt16BE(0);
  if (cmd !== CMD_CONNECT) throw new ProtocolError(`command ${cmd} (only CONNECT)`, reply(REPLY.commandNotSupported));
  return { host, port };
}

export function serveSocks5(gate: ProxyGate, log: Logger, socket: net.Socket): void {
  socket.on('error', () => undefined);
  socket.setTimeout(HANDSHAKE_TIMEOUT_MS, () => socket.destroy());
  handshake(gate, socket).catch((err: unknown) => {
    if (err instanceof ProtocolError) {
      log.debug({ err: err.message }, 'socks5: refused');
      if (err.reply && socket.writable) socket.end(err.reply);
      else socket.destroy();
    } else {
      log.warn({ err }, 'socks5: connection failed');
      socket.destroy();
    }
  });
}

async function handshake(gate: ProxyGate, socket: net.Socket): Promise<void> {
  const r = new Reader(socket);
  const [ver, nmethods] = await r.read(2);
  if (ver !== VERSION) throw new ProtocolError(`version ${ver}`);
  if (!nmethods) throw new ProtocolError('no methods', Buffer.from([VERSION, NO_METHOD]));
  const methods = await r.read(nmethods);
  const clientIp = socket.remoteAddress ?? '';
  let username: string | null = null;
  let password: string | null = null;
  if (methods.includes(METHOD_PASSWORD)) {
    socket.write(Buffer.from([VERSION, METHOD_PASSWORD]));
    const [aver, ulen] = await r.read(2);
    if (aver !== AUTH_VERSION) throw new ProtocolError(`auth version ${aver}`, Buffer.from([AUTH_VERSION, 0x01]));
    username = (await r.read(ulen ?? 0)).toString('utf8');
    const [plen] = await r.read(1);
    password = (await r.read(plen ?? 0)).toString('utf8');
  } else if (methods.includes(METHOD_NONE) && gate.o.directory.byClientIp(clientIp)) {
    socket.write(Buffer.from([VERSION, METHOD_NONE]));
  } else {
    throw new ProtocolError('no acceptable method', Buffer.from([VERSION, NO_METHOD]));
  }
  const admission = gate.admit(username, password, clientIp);
  if (username !== null) {
    // RFC 1929: a failure status closes the connection; the request is never read.
    if (!admission.ok && (admission.refusal.kind === 'auth' || admission.refusal.kind === 'throttled' || admission.refusal.kind === 'syntax')) throw new ProtocolError(admission.refusal.message, Buffer.from([AUTH_VERSION, 0x01]));
    socket.write(Buffer.from([AUTH_VERSION, 0x00]));
  }
  const { host, port } = await address(r);
  if (!admission.ok) throw new ProtocolError(admission.refusal.message, reply(refusalReply(admission.refusal)));
  const { user, params } = admission;
  const release = gate.hold(user, { close: () => socket.destroy() });
  let upstream: net.Socket;
  try {
    upstream = await gate.connect(host, port, params);
  } catch (err) {
    release();
    throw new ProtocolError(`connect ${host}:${port}: ${(err as Error).message}`, reply(connectErrorReply(err as NodeJS.ErrnoException)));
  }
  if (socket.destroyed) {
    // Cut (the user removed) while connecting.
    upstream.destroy();
    release();
    return;
  }
  socket.setTimeout(0);
  const early = r.detach();
  socket.write(reply(REPLY.ok));
  if (early.length > 0) upstream.write(early);
  tunnel(socket, upstream, gate.tunnelOptions(user, release));
  socket.resume();
}
