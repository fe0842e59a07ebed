/**
 * The IP limit: a subscription's `ip_limit` caps how many distinct client IPs
 * a user's live connections may come from, across every node.
 *
 * Agents publish each user's live IPs on their node whenever the set changes
 * (IpsMessage). Every fleet worker hears every message, as with heartbeats,
 * and keeps the union in memory: node → user → IP → since. Nothing of it is
 * stored: a restarted worker learns it again from the agents' snapshots
 * within one snapshot interval. A node that stops heartbeating (down, or cut
 * off) takes its IPs with it after `nodeTimeoutMs`, and any entry not
 * refreshed within the agent's `ttlMs` goes too.
 *
 * Over the limit, the newest IPs (latest `since`: when their oldest open
 * connection opened) are cut until the count is back at the limit: the nodes
 * holding them are told to close that user's connections from those IPs
 * only. The user stays on every core (the limit is on concurrency, not on
 * access), so the oldest IPs keep streaming, and a retry from a cut IP is cut
 * again as soon as its connection is reported. Each cut is recorded as
 * usage.IpLimitExceeded with the IP sealed under the user's key.
 *
 * Several workers decide alike from the same reports: they push the same
 * cuts (a second cut finds nothing to close) and their events share an id
 * derived from user, IP and since, so JetStream stores one.
 */
import type { IpLimitExceededV1 } from '../../contracts/catalogue.generated.js';
import { derivedId } from '../../contracts/ids.js';
import type { Logger } from '../../infra/logger.js';
import type { FleetDeps } from '../../producers/fleet/fleet-deps.js';
import type { PersonKeys } from '../../producers/identity/crypto/person-keys.js';
import { sealIp } from '../../producers/usage/connection-reports.js';
import type { IpsMessage } from './agent-protocol.js';

interface UserIps {
  /** IP → when its oldest connection on this node opened (ms). */
  ips: Map<string, number>;
  expiresAt: number;
}

export interface LiveIp {
  ip: string;
  since: number;
  nodes: string[];
}

export interface IpLimitOptions {
  /** No heartbeat for this long: the node's IPs no longer count (default: the health tracker's down time). */
  nodeTimeoutMs: number;
  /** Snapshot entries expire after at most this (an agent's own ttl is used when shorter). */
  maxTtlMs?: number;
  /** One event per user and IP within this time, however often it is cut. */
  eventEveryMs?: number;
  now?: () => number;
}

const MAX_IPS_PER_USER = 256;
const DEFAULT_MAX_TTL_MS = 120_000;
const DEFAULT_EVENT_EVERY_MS = 60_000;

/** The id of the IpLimitExceeded for this cut: the same in every fleet worker. */
export function ipLimitEventId(userId: string, ip: string, since: number): string {
  return derivedId(`ip-limit\n${userId}\n${ip}\n${since}`);
}

/** The IPs to cut: the newest first until `limit` remain (ties: the greater address, so every worker picks the same). */
export function ipsOverLimit(live: readonly LiveIp[], limit: number): LiveIp[] {
  if (live.length <= limit) return [];
  const newestFirst = [...live].sort((a, b) => b.since - a.since || (a.ip < b.ip ? 1 : a.ip > b.ip ? -1 : 0));
  return newestFirst.slice(0, live.length - limit);
}

export class IpLimiter {
  private readonly nodes = new Map<string, Map<string, UserIps>>();
  private readonly heard = new Map<string, number>();
  private readonly recorded = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private readonly now: () => number;
  readonly stats = { cuts: 0, events: 0 };

  constructor(
    private readonly d: FleetDeps,
    private readonly keys: PersonKeys,
    private readonly log: Logger,
    private readonly o: IpLimitOptions,
  ) {
    this.now = o.now ?? Date.now;
  }

  start(): void {
    this.timer = setInterval(() => this.sweep(), Math.max(250, Math.min(this.o.nodeTimeoutMs, 5_000)));
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** A heartbeat: the node's IPs still count. */
  beat(nodeId: string): void {
    this.heard.set(nodeId, this.now());
  }

  /** Takes a node's report and cuts what it put over a limit. */
  async report(nodeId: string, message: IpsMessage): Promise<void> {
    if (!Array.isArray(message?.users)) return;
    const now = this.now();
    this.heard.set(nodeId, now);
    const ttl = Math.min(Math.max(Number(message.ttlMs) || 0, 1_000), this.o.maxTtlMs ?? DEFAULT_MAX_TTL_MS);
    let users = this.nodes.get(nodeId);
    if (!users) this.nodes.set(nodeId, (users = new Map<string, UserIps>()));
    const grown: string[] = [];
    for (const entry of message.users) {
      if (typeof entry?.userId !== 'string' || !Array.isArray(entry.ips)) continue;
      const ips = new Map<string, number>();
      for (const { ip, since } of entry.ips.slice(0, MAX_IPS_PER_USER)) {
        const at = Date.parse(since);
        if (typeof ip === 'string' && Number.isFinite(at)) ips.set(ip, at);
      }
      if (ips.size === 0) {
        users.delete(entry.userId);
        continue;
      }
      users.set(entry.userId, { ips, expiresAt: now + ttl });
      grown.push(entry.userId);
    }
    await this.enforce(grown);
  }

  /** The user's distinct live IPs over every node that still counts. */
  liveIps(userId: string): LiveIp[] {
    const union = new Map<string, LiveIp>();
    const now = this.now();
    for (const [nodeId, users] of this.nodes) {
      const entry = users.get(userId);
      if (!entry || entry.expiresAt <= now || !this.counts(nodeId, now)) continue;
      for (const [ip, since] of entry.ips) {
        const seen = union.get(ip);
        if (seen) {
          seen.since = Math.min(seen.since, since);
          seen.nodes.push(nodeId);
        } else union.set(ip, { ip, since, nodes: [nodeId] });
      }
    }
    return [...union.values()];
  }

  private counts(nodeId: string, now: number): boolean {
    return now - (this.heard.get(nodeId) ?? 0) < this.o.nodeTimeoutMs;
  }

  /** Drops what no longer counts: nodes gone quiet, entries past their ttl, old event marks. */
  sweep(): void {
    const now = this.now();
    for (const [nodeId, users] of this.nodes) {
      if (!this.counts(nodeId, now)) {
        this.nodes.delete(nodeId);
        continue;
      }
      for (const [userId, entry] of users) if (entry.expiresAt <= now) users.delete(userId);
    }
    const every = this.o.eventEveryMs ?? DEFAULT_EVENT_EVERY_MS;
    for (const [key, at] of this.recorded) if (now - at >= every) this.recorded.delete(key);
  }

  private async enforce(userIds: readonly string[]): Promise<void> {
    // A limit is at least 1: only users with two IPs or more can be over it.
    const candidates = new Map(userIds.map((u) => [u, this.liveIps(u)] as const).filter(([, ips]) => ips.length > 1));
    if (candidates.size === 0) return;
    const limits = await this.d.db.selectFrom('subscriptions').select(['user_id', 'ip_limit']).where('user_id', 'in', [...candidates.keys()]).where('ip_limit', 'is not', null).execute();
    for (const { user_id: userId, ip_limit: limit } of limits) {
      const live = candidates.get(userId)!;
      for (const over of ipsOverLimit(live, limit!)) await this.cut(userId, over, limit!, live.length);
    }
  }

  private async cut(userId: string, over: LiveIp, limit: number, count: number): Promise<void> {
    for (const nodeId of over.nodes) this.d.push(nodeId, { type: 'cut-ip', userId, ip: over.ip });
    this.stats.cuts++;
    const key = `${userId}\n${over.ip}`;
    if (this.recorded.has(key)) return;
    this.recorded.set(key, this.now());
    try {
      const data: IpLimitExceededV1 = { userId, clientIpSealed: sealIp(await this.keys.getMany([userId]), userId, over.ip), ipLimit: limit, ipCount: count, nodeIds: over.nodes, detectedAt: new Date(this.now()) };
      await this.d.handler.store.append(this.d.names.aggregate('usage', 'iplimit', userId), [{ type: 'usage.IpLimitExceeded', data }], {
        expectedSeq: null,
        meta: { source: 'relaygrid/fleet', actor: 'system:ip-limit' },
        ids: [ipLimitEventId(userId, over.ip, over.since)],
      });
      this.stats.events++;
    } catch (err) {
      this.recorded.delete(key);
      // The cut is done; only its record failed (the next cut of this IP records it). No IP in the log line.
      this.log.warn({ err, userId }, 'recording an IP limit cut failed');
    }
  }
}
