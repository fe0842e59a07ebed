/**
 * Presence in Redis, kept by heartbeats so a gateway that dies takes its users
 * offline within one TTL without anyone cleaning up after it.
 *
 * - `<ns>:presence:<user>`: a sorted set of gateway boot ids, scored by when
 *   that gateway's claim expires. Online = some score is still in the future.
 * - `<ns>:device:<device>`: the connection id holding that device, with the
 *   same TTL; the send path asks it which recipients are offline (push hook).
 * - `<ns>:lastseen:<user>`: when the user was last announced offline.
 *
 * Changes are broadcast on core NATS (`<ns>.presence.<user>`) to the gateways
 * whose clients watch that user; offline is debounced, so a reconnect within
 * the debounce says nothing at all.
 */
import type { Redis } from 'ioredis';
import type { Subscription } from '@nats-io/transport-node';
import type { Nats } from '../infra/nats/connection.js';
import type { Names } from '../infra/naming.js';
import type { Logger } from '../infra/logger.js';

export interface PresenceState {
  user: string;
  state: 'online' | 'offline';
  lastSeen: number | null;
}

export interface PresenceOptions {
  gatewayId: string;
  ttlMs: number;
  offlineDebounceMs: number;
}

/** Deletes the device key only if it still names this connection (a newer one may have taken it). */
const RELEASE_DEVICE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

export class Presence {
  /** Local connections per user. */
  private readonly local = new Map<string, number>();
  /** Local connection ids per device (for heartbeats). */
  private readonly devices = new Map<string, string>();
  private readonly pendingOffline = new Map<string, NodeJS.Timeout>();
  /** Watched users → last state told to local watchers, and the subscription carrying changes. */
  private readonly watched = new Map<string, { state: PresenceState['state']; sub: Subscription; watchers: number }>();
  private heartbeat: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: { redis: Redis; nats: Nats; names: Names; log: Logger },
    private readonly opts: PresenceOptions,
    /** Called for every change of a watched user, for the gateway to tell its watchers. */
    private readonly onChange: (change: PresenceState) => void,
  ) {}

  private key(user: string): string {
    return `${this.deps.names.namespace}:presence:${user}`;
  }

  private deviceKey(device: string): string {
    return `${this.deps.names.namespace}:device:${device}`;
  }

  private lastSeenKey(user: string): string {
    return `${this.deps.names.namespace}:lastseen:${user}`;
  }

  start(): void {
    this.heartbeat = setInterval(() => void this.beat().catch((err: unknown) => this.deps.log.warn({ err }, 'presence heartbeat failed')), Math.max(500, this.opts.ttlMs / 3));
  }

  /** Withdraws this gateway's claims and announces its users offline (a clean shutdown). */
  async stop(): Promise<void> {
    clearInterval(this.heartbeat);
    for (const timer of this.pendingOffline.values()) clearTimeout(timer);
    for (const w of this.watched.values()) w.sub.unsubscribe();
    const users = [...this.local.keys()];
    this.local.clear();
    await Promise.all(users.map((user) => this.withdraw(user)));
    const devices = [...this.devices.entries()];
    this.devices.clear();
    await Promise.all(devices.map(([device, conn]) => this.deps.redis.eval(RELEASE_DEVICE, 1, this.deviceKey(device), conn)));
  }

  async connected(user: string, device: string, connId: string): Promise<void> {
    const { redis } = this.deps;
    this.devices.set(device, connId);
    const count = (this.local.get(user) ?? 0) + 1;
    this.local.set(user, count);
    const debounced = this.pendingOffline.get(user);
    if (debounced) {
      clearTimeout(debounced);
      this.pendingOffline.delete(user);
    }
    const now = Date.now();
    const [[, before]] = (await redis
      .multi()
      .zcount(this.key(user), now, '+inf')
      .zadd(this.key(user), now + this.opts.ttlMs, this.opts.gatewayId)
      .pexpire(this.key(user), this.opts.ttlMs)
      .set(this.deviceKey(device), connId, 'PX', this.opts.ttlMs)
      .exec()) as [[null, number], ...unknown[]];
    if (before === 0 && !debounced) this.announce({ user, state: 'online', lastSeen: null });
  }

  async disconnected(user: string, device: string, connId: string): Promise<void> {
    if (this.devices.get(device) === connId) this.devices.delete(device);
    await this.deps.redis.eval(RELEASE_DEVICE, 1, this.deviceKey(device), connId);
    const count = (this.local.get(user) ?? 1) - 1;
    if (count > 0) {
      this.local.set(user, count);
      return;
    }
    this.local.delete(user);
    const timer = setTimeout(() => {
      this.pendingOffline.delete(user);
      if (this.local.has(user)) return;
      void this.withdraw(user).catch((err: unknown) => this.deps.log.warn({ err, user }, 'presence withdrawal failed'));
    }, this.opts.offlineDebounceMs);
    this.pendingOffline.set(user, timer);
  }

  /** Removes this gateway's claim; if nobody else holds the user, records last seen and announces offline. */
  private async withdraw(user: string): Promise<void> {
    const { redis } = this.deps;
    const now = Date.now();
    const [, [, remaining]] = (await redis.multi().zrem(this.key(user), this.opts.gatewayId).zcount(this.key(user), now, '+inf').exec()) as [unknown, [null, number]];
    if (remaining > 0) return;
    await redis.set(this.lastSeenKey(user), String(now), 'EX', 400 * 24 * 3600);
    this.announce({ user, state: 'offline', lastSeen: now });
  }

  private announce(change: PresenceState): void {
    this.deps.nats.nc.publish(this.deps.names.presence(change.user), JSON.stringify(change));
  }

  /** Refreshes this gateway's claims, and re-reads watched users so a dead gateway's users turn offline here too. */
  private async beat(): Promise<void> {
    const { redis } = this.deps;
    const until = Date.now() + this.opts.ttlMs;
    const pipeline = redis.pipeline();
    for (const user of this.local.keys()) pipeline.zadd(this.key(user), until, this.opts.gatewayId).pexpire(this.key(user), this.opts.ttlMs);
    for (const [device, conn] of this.devices) pipeline.set(this.deviceKey(device), conn, 'PX', this.opts.ttlMs);
    await pipeline.exec();
    const users = [...this.watched.keys()];
    if (users.length === 0) return;
    const states = await this.states(users);
    for (const s of states) {
      const w = this.watched.get(s.user);
      if (w && w.state !== s.state) {
        w.state = s.state;
        this.onChange(s);
      }
    }
  }

  /** Current state of each user, read from Redis. */
  async states(users: readonly string[]): Promise<PresenceState[]> {
    if (users.length === 0) return [];
    const now = Date.now();
    const pipeline = this.deps.redis.pipeline();
    for (const user of users) pipeline.zcount(this.key(user), now, '+inf').get(this.lastSeenKey(user));
    const replies = (await pipeline.exec()) ?? [];
    return users.map((user, i) => {
      const online = Number(replies[2 * i]?.[1] ?? 0) > 0;
      const lastSeen = replies[2 * i + 1]?.[1];
      return { user, state: online ? 'online' : 'offline', lastSeen: typeof lastSeen === 'string' ? Number(lastSeen) : null };
    });
  }

  /** Which of these devices hold a live connection somewhere. */
  async onlineDevices(devices: readonly string[]): Promise<Set<string>> {
    if (devices.length === 0) return new Set();
    const values = await this.deps.redis.mget(devices.map((d) => this.deviceKey(d)));
    return new Set(devices.filter((_, i) => values[i] !== null));
  }

  /** Starts following a user's changes (one subscription per user per gateway, however many watch). */
  watch(user: string, initial: PresenceState['state']): void {
    const existing = this.watched.get(user);
    if (existing) {
      existing.watchers++;
      return;
    }
    const sub = this.deps.nats.nc.subscribe(this.deps.names.presence(user), {
      callback: (err, msg) => {
        if (err) return;
        const change = JSON.parse(msg.string()) as PresenceState;
        const w = this.watched.get(user);
        if (!w || w.state === change.state) return;
        w.state = change.state;
        this.onChange(change);
      },
    });
    this.watched.set(user, { state: initial, sub, watchers: 1 });
  }

  unwatch(user: string): void {
    const w = this.watched.get(user);
    if (!w) return;
    if (--w.watchers > 0) return;
    w.sub.unsubscribe();
    this.watched.delete(user);
  }
}
