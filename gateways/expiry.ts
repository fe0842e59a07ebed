/**
 * Removal of undelivered inbox entries when their time is up: a disappearing
 * message's ttl, or the inbox retention. JetStream's own max_age cannot do it
 * alone (2.9 has no per-message TTL, and it would not tell us), so every entry
 * is scheduled in a Redis sorted set scored by its deadline and each gateway
 * sweeps it; ZREM decides which gateway removes an entry, so each expiry is
 * recorded once. The stream's max_age, an hour later, is the backstop.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { Logger } from '../infra/logger.js';
import type { Inbox } from './inbox.js';

export interface Scheduled {
  offset: number;
  messageId: string;
  /** The device whose inbox holds it, or `group:<id>` for a group's single copy. */
  holder: string;
  expiresAt: number;
  reason: 'ttl' | 'retention';
}

/** Raises the device's lost-offset marker, never lowers it. */
const RAISE = `local v = tonumber(redis.call('get', KEYS[1]) or '0') if tonumber(ARGV[1]) > v then redis.call('set', KEYS[1], ARGV[1], 'EX', ARGV[2]) end return 0`;

function member(e: Omit<Scheduled, 'expiresAt'>): string {
  return `${e.offset}|${e.reason}|${e.holder}|${e.messageId}`;
}

function parse(m: string, expiresAt: number): Scheduled | undefined {
  const [offset, reason, holder, ...rest] = m.split('|');
  if (!offset || !holder || (reason !== 'ttl' && reason !== 'retention')) return undefined;
  return { offset: Number(offset), reason, holder, messageId: rest.join('|'), expiresAt };
}

export class InboxExpiry {
  private timer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(
    private readonly deps: { redis: Redis; inbox: Inbox; namespace: string; log: Logger; retentionSeconds: number },
    /** Told about every entry this gateway removed. */
    private readonly onExpired: (entry: Scheduled) => void,
  ) {}

  private get key(): string {
    return `${this.deps.namespace}:inbox:expiry`;
  }

  private lostKey(device: string): string {
    return `${this.deps.namespace}:inbox:lost:${device}`;
  }

  /** Deadline and reason for an entry sent now with an optional ttl. */
  deadline(now: number, ttlSeconds: number | undefined): Pick<Scheduled, 'expiresAt' | 'reason'> {
    const retention = now + this.deps.retentionSeconds * 1000;
    if (ttlSeconds !== undefined && now + ttlSeconds * 1000 < retention) return { expiresAt: now + ttlSeconds * 1000, reason: 'ttl' };
    return { expiresAt: retention, reason: 'retention' };
  }

  /** Adds the entries' deadlines to a pipeline the caller runs (one round trip with its other writes). */
  schedule(pipeline: ChainableCommander, entries: readonly Scheduled[]): ChainableCommander {
    return entries.length === 0 ? pipeline : pipeline.zadd(this.key, ...entries.flatMap((e) => [e.expiresAt, member(e)]));
  }

  /** An acknowledged entry needs no expiry. */
  async cancel(entries: readonly Omit<Scheduled, 'expiresAt'>[]): Promise<void> {
    if (entries.length === 0) return;
    await this.deps.redis.zrem(this.key, ...entries.map(member));
  }

  /** The highest offset removed undelivered from this device's inbox (0 if none): a resume from below it cannot be filled. */
  async lostOffset(device: string): Promise<number> {
    return Number((await this.deps.redis.get(this.lostKey(device))) ?? 0);
  }

  start(intervalMs = 1000): void {
    this.timer = setInterval(() => {
      this.sweeping ??= this.sweep()
        .then(() => undefined)
        .catch((err: unknown) => this.deps.log.warn({ err }, 'inbox expiry sweep failed'))
        .finally(() => (this.sweeping = undefined));
    }, intervalMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.sweeping;
  }

  /** Removes every entry past its deadline; returns how many this gateway removed. */
  async sweep(now = Date.now()): Promise<number> {
    const { redis, inbox } = this.deps;
    let removed = 0;
    for (;;) {
      const due = await redis.zrangebyscore(this.key, '-inf', now, 'WITHSCORES', 'LIMIT', 0, 200);
      if (due.length === 0) return removed;
      for (let i = 0; i < due.length; i += 2) {
        const m = due[i] as string;
        if ((await redis.zrem(this.key, m)) !== 1) continue; // another gateway took it
        const entry = parse(m, Number(due[i + 1]));
        if (!entry || !(await inbox.delete(entry.offset))) continue;
        if (!entry.holder.startsWith('group:')) await redis.eval(RAISE, 1, this.lostKey(entry.holder), String(entry.offset), String(this.deps.retentionSeconds));
        removed++;
        this.onExpired(entry);
      }
    }
  }
}
