/**
 * Access tokens are verified without a round trip, so revoking one (logout,
 * refresh-token reuse, suspension, a role taken away) must reach every API
 * process another way: each revocation is written to a Redis sorted set (for
 * processes that start later) and broadcast on core NATS (for the running
 * ones), and every process keeps the live entries in memory until the tokens
 * they cover have expired anyway.
 */
import type { Redis } from 'ioredis';
import type { Subscription } from '@nats-io/transport-node';
import type { Nats } from '../../../infra/nats/connection.js';
import type { AccessClaims } from './access-tokens.js';

export type Revocation = { kind: 'session'; id: string; until: number } | { kind: 'user'; id: string; notBefore: number; until: number };

function encode(r: Revocation): string {
  return r.kind === 'session' ? `s:${r.id}` : `u:${r.id}:${r.notBefore}`;
}

function decode(member: string, until: number): Revocation | undefined {
  const [kind, id, notBefore] = member.split(':');
  if (kind === 's' && id) return { kind: 'session', id, until };
  if (kind === 'u' && id && notBefore) return { kind: 'user', id, notBefore: Number(notBefore), until };
  return undefined;
}

export class Revocations {
  private readonly sessions = new Map<string, number>();
  /** userId → tokens issued at or before this instant (ms) are dead. */
  private readonly users = new Map<string, { notBefore: number; until: number }>();
  private subscription: Subscription | undefined;
  private pruner: NodeJS.Timeout | undefined;
  /** Told of every revocation this process learns of, so holders of long-lived connections can end them. */
  private readonly listeners: ((r: Revocation) => void)[] = [];

  constructor(
    private readonly deps: { nats: Nats; redis: Redis; namespace: string; tokenTtlSeconds: number },
  ) {}

  private get key(): string {
    return `${this.deps.namespace}:revoked`;
  }

  private get subject(): string {
    return `${this.deps.namespace}.auth.revoked`;
  }

  /**
   * Subscribes first, then loads what Redis holds, so nothing revoked in between
   * is missed; loads again after every NATS reconnect, since broadcasts sent
   * while disconnected are gone.
   */
  async start(): Promise<void> {
    this.subscription = this.deps.nats.nc.subscribe(this.subject, {
      callback: (err, msg) => {
        if (err) return;
        try {
          this.remember(JSON.parse(msg.string()) as Revocation);
        } catch {
          // A malformed broadcast is not ours to act on.
        }
      },
    });
    await this.load();
    void this.reloadOnReconnect();
    this.pruner = setInterval(() => this.prune(), 30_000);
    this.pruner.unref();
  }

  private async load(): Promise<void> {
    await this.deps.redis.zremrangebyscore(this.key, '-inf', Date.now());
    const entries = await this.deps.redis.zrange(this.key, 0, -1, 'WITHSCORES');
    for (let i = 0; i + 1 < entries.length; i += 2) {
      const r = decode(entries[i]!, Number(entries[i + 1]));
      if (r) this.remember(r);
    }
  }

  private async reloadOnReconnect(): Promise<void> {
    for await (const status of this.deps.nats.nc.status()) {
      if (status.type !== 'reconnect') continue;
      await this.load().catch(() => undefined);
    }
  }

  async stop(): Promise<void> {
    if (this.pruner) clearInterval(this.pruner);
    await this.subscription?.drain();
  }

  revokeSession(sessionId: string): Promise<void> {
    return this.publish({ kind: 'session', id: sessionId, until: this.until() });
  }

  /** Every access token of the user issued up to now stops working. */
  revokeUser(userId: string, now = Date.now()): Promise<void> {
    return this.publish({ kind: 'user', id: userId, notBefore: now, until: this.until() });
  }

  onRevoke(listener: (r: Revocation) => void): void {
    this.listeners.push(listener);
  }

  isRevoked(claims: Pick<AccessClaims, 'sub' | 'sid' | 'ims'>): boolean {
    if (this.sessions.has(claims.sid)) return true;
    const user = this.users.get(claims.sub);
    return user !== undefined && claims.ims <= user.notBefore;
  }

  private until(): number {
    // A token issued just before the revocation lives at most one TTL; keep a margin for clock skew.
    return Date.now() + (this.deps.tokenTtlSeconds + 60) * 1000;
  }

  private async publish(r: Revocation): Promise<void> {
    this.remember(r);
    await this.deps.redis.zadd(this.key, r.until, encode(r));
    this.deps.nats.nc.publish(this.subject, JSON.stringify(r));
  }

  private remember(r: Revocation): void {
    for (const listener of this.listeners) listener(r);
    if (r.kind === 'session') {
      this.sessions.set(r.id, r.until);
      return;
    }
    const known = this.users.get(r.id);
    if (!known || known.notBefore < r.notBefore) this.users.set(r.id, { notBefore: r.notBefore, until: r.until });
  }

  private prune(now = Date.now()): void {
    for (const [id, until] of this.sessions) if (until < now) this.sessions.delete(id);
    for (const [id, entry] of this.users) if (entry.until < now) this.users.delete(id);
  }
}
