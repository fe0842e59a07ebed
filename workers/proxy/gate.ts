/**
 * What every proxy protocol asks before it moves a byte: who is this (the
 * username grammar, the password or the client's IP, failed attempts
 * throttled per IP), may they leave from here (country and city against the
 * node's registered location), may they open one more connection, and which
 * egress address their session pins. One answer for an unknown user and a
 * wrong password: a refusal never tells whether a user exists.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import type { ProxyAccounting } from './accounting.js';
import { AuthThrottle, type AuthThrottleOptions } from './auth-throttle.js';
import { normalizeIp, type Closable, type ProxyDirectory, type ProxyUser } from './directory.js';
import { cityToken, parseProxyUsername, UsernameSyntaxError, type ProxyUsername } from './username.js';

export interface NodeLocation {
  /** ISO alpha-2, as the fleet registered the node. */
  country: string;
  city: string;
}

export type Refusal =
  | { kind: 'auth'; message: string }
  | { kind: 'throttled'; message: string }
  | { kind: 'syntax'; message: string }
  | { kind: 'location'; message: string }
  | { kind: 'connections'; message: string }
  | { kind: 'requests'; message: string };

export type Admission = { ok: true; user: ProxyUser; params: ProxyUsername } | { ok: false; refusal: Refusal };

export interface GateOptions {
  directory: ProxyDirectory;
  accounting: ProxyAccounting;
  location?: NodeLocation;
  /** Local addresses outgoing connections may leave from; a session keeps one. None: the system's choice. */
  egress?: readonly string[];
  throttle?: AuthThrottleOptions;
  connectTimeoutMs?: number;
}

const AUTH_FAILED = 'proxy authentication failed';

export class ProxyGate {
  private readonly throttle: AuthThrottle;

  constructor(readonly o: GateOptions) {
    this.throttle = new AuthThrottle(o.throttle);
  }

  /** Credentials (null: none sent) from a client at `clientIp`. */
  admit(rawUsername: string | null, password: string | null, clientIp: string): Admission {
    const ip = normalizeIp(clientIp);
    if (!this.throttle.allowed(ip)) return { ok: false, refusal: { kind: 'throttled', message: 'too many failed proxy authentications from this address; wait a minute' } };
    let user: ProxyUser | null;
    let params: ProxyUsername = { username: '' };
    if (rawUsername === null) {
      user = this.o.directory.byClientIp(ip);
    } else {
      try {
        params = parseProxyUsername(rawUsername);
      } catch (err) {
        if (err instanceof UsernameSyntaxError) return { ok: false, refusal: { kind: 'syntax', message: `proxy username: ${err.message}` } };
        throw err;
      }
      user = this.o.directory.authenticate(params.username, password ?? '');
    }
    if (!user) {
      this.throttle.failed(ip);
      return { ok: false, refusal: { kind: 'auth', message: AUTH_FAILED } };
    }
    const location = this.locationRefusal(params);
    if (location) return { ok: false, refusal: location };
    const max = user.maxConnections;
    if (max !== null && user.open.size >= max) return { ok: false, refusal: { kind: 'connections', message: `at most ${max} connections at once` } };
    return { ok: true, user, params };
  }

  private locationRefusal(params: ProxyUsername): Refusal | null {
    const here = this.o.location;
    if (params.country && params.country !== here?.country.toUpperCase()) return { kind: 'location', message: `country ${params.country}: no node of your plan there is reachable through this address` };
    if (params.city && params.city !== cityToken(here?.city ?? '')) return { kind: 'location', message: `city ${params.city}: no node of your plan there is reachable through this address` };
    return null;
  }

  /** One more request of the user (HTTP): false when over their requests per second. */
  request(user: ProxyUser): boolean {
    if (user.requests && !user.requests.tryTake()) return false;
    this.o.accounting.request(user.userId);
    return true;
  }

  /** Counts the connection and holds it open under its user until `release`. */
  hold(user: ProxyUser, closable: Closable): () => void {
    user.open.add(closable);
    this.o.accounting.connection(user.userId);
    return () => user.open.delete(closable);
  }

  /** The local address a session leaves from: the same one for the same session id. */
  egressFor(params: ProxyUsername): string | undefined {
    const egress = this.o.egress ?? [];
    if (egress.length === 0) return undefined;
    if (!params.session) return egress[0];
    const h = createHash('sha256').update(`${params.username}\0${params.session}`).digest().readUInt32BE(0);
    return egress[h % egress.length];
  }

  /** A TCP connection to the destination, from the session's egress. */
  connect(host: string, port: number, params: ProxyUsername): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const localAddress = this.egressFor(params);
      const socket = net.connect({ host, port, ...(localAddress ? { localAddress } : {}) });
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), this.o.connectTimeoutMs ?? 10_000);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeListener('error', reject);
        resolve(socket);
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  /** Moves a user's bytes through this tunnel, counted and limited. */
  tunnelOptions(user: ProxyUser, closed: () => void) {
    const { accounting } = this.o;
    return {
      uplink: () => user.uplink,
      downlink: () => user.downlink,
      up: (n: number) => accounting.uplink(user.userId, n),
      down: (n: number) => accounting.downlink(user.userId, n),
      closed,
    };
  }
}
