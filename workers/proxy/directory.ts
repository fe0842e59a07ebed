/**
 * Who may use the proxy, live: the accounts the fleet pushes (through the
 * agent's user changes), each with its limits, and every open connection of
 * each. Adding, rotating or limiting an account changes the next connection;
 * removing or rotating one closes the connections it has open, at once
 * (a proxy that checks credentials only at the handshake would let them run).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { TokenBucket } from './token-bucket.js';

/** Limits of one user; absent or null: none. Bytes per second, requests per second. */
export interface ProxyLimits {
  maxConnections?: number | null;
  uplinkBytesPerSecond?: number | null;
  downlinkBytesPerSecond?: number | null;
  requestsPerSecond?: number | null;
}

export interface ProxyAccount {
  userId: string;
  username: string;
  password: string;
  limits?: ProxyLimits;
  /** Client IPs allowed to use the account without a password (IP-allowlist authentication). */
  allowedIps?: readonly string[];
}

/** Something to close when its user goes: a tunnel, a client connection. */
export interface Closable {
  close(): void;
}

/** How much a bucket may save up, in seconds of its rate: small, so a limit holds over short windows too. */
const BURST_SECONDS = 0.25;

const digest = (s: string) => createHash('sha256').update(s).digest();
/** Compared with when the username is unknown: the same work either way, so timing tells nothing. */
const NOBODY = digest('\0nobody');

export class ProxyUser {
  readonly open = new Set<Closable>();
  uplink: TokenBucket | null = null;
  downlink: TokenBucket | null = null;
  requests: TokenBucket | null = null;
  private passwordDigest: Buffer;

  constructor(public account: ProxyAccount) {
    this.passwordDigest = digest(account.password);
    this.limit(account.limits ?? {});
  }

  get userId(): string {
    return this.account.userId;
  }

  get maxConnections(): number | null {
    return this.account.limits?.maxConnections ?? null;
  }

  passwordMatches(password: string): boolean {
    return timingSafeEqual(this.passwordDigest, digest(password));
  }

  /** New limits, live: buckets are made again only for the rates that changed. */
  limit(limits: ProxyLimits): void {
    const bucket = (rate: number | null | undefined, current: TokenBucket | null, burstOf: (r: number) => number) => (rate ? (current?.rate === rate ? current : new TokenBucket(rate, burstOf(rate))) : null);
    this.uplink = bucket(limits.uplinkBytesPerSecond, this.uplink, (r) => Math.max(64 * 1024, r * BURST_SECONDS));
    this.downlink = bucket(limits.downlinkBytesPerSecond, this.downlink, (r) => Math.max(64 * 1024, r * BURST_SECONDS));
    this.requests = bucket(limits.requestsPerSecond, this.requests, (r) => Math.max(1, r));
  }

  replace(account: ProxyAccount): void {
    this.passwordDigest = digest(account.password);
    this.limit(account.limits ?? {});
    this.account = account;
  }

  closeAll(): number {
    const n = this.open.size;
    for (const c of [...this.open]) c.close();
    this.open.clear();
    return n;
  }
}

export class ProxyDirectory {
  private readonly users = new Map<string, ProxyUser>();
  private readonly byIp = new Map<string, ProxyUser>();

  get size(): number {
    return this.users.size;
  }

  get(username: string): ProxyUser | undefined {
    return this.users.get(username);
  }

  /**
   * Adds or replaces an account. A new password closes what the old one opened
   * (a rotation ends the old credentials' tunnels); new limits apply to open
   * connections too, as they share the user's buckets.
   */
  set(account: ProxyAccount): void {
    const current = this.users.get(account.username);
    if (!current) {
      this.users.set(account.username, new ProxyUser(account));
    } else {
      const rotated = current.account.password !== account.password || current.userId !== account.userId;
      if (rotated) current.closeAll();
      current.replace(account);
    }
    this.indexIps();
  }

  /** Removes an account and closes its open connections; answers how many. */
  remove(username: string): number {
    const user = this.users.get(username);
    if (!user) return 0;
    this.users.delete(username);
    this.indexIps();
    return user.closeAll();
  }

  /** Every account not in `keep` goes (a full configuration replaces the pushed state). */
  retain(keep: ReadonlySet<string>): void {
    for (const username of [...this.users.keys()]) if (!keep.has(username)) this.remove(username);
  }

  /** The user for these credentials, or null; the same work whether the username exists or not. */
  authenticate(username: string, password: string): ProxyUser | null {
    const user = this.users.get(username);
    if (!user) {
      timingSafeEqual(NOBODY, digest(password));
      return null;
    }
    return user.passwordMatches(password) ? user : null;
  }

  /** The user whose allowlist holds this client IP, for clients that send no credentials. */
  byClientIp(ip: string): ProxyUser | null {
    return this.byIp.get(normalizeIp(ip)) ?? null;
  }

  private indexIps(): void {
    this.byIp.clear();
    for (const user of this.users.values()) for (const ip of user.account.allowedIps ?? []) this.byIp.set(normalizeIp(ip), user);
  }
}

/** `::ffff:127.0.0.1` (an IPv4 client on a dual-stack socket) is 127.0.0.1. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') ? ip.slice(7) : ip;
}
