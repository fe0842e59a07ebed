/**
 * Rate limits and account lockout in Redis, shared by every API process.
 *
 * Windows are fixed (INCR with an expiry set on the first hit): cheap, and a
 * burst at a window edge is at most twice the limit. Lockout counts failed
 * logins per email index key, whether or not an account has that address, so
 * a locked answer never tells an attacker that the email exists.
 */
import type { Redis } from 'ioredis';

export interface LimitVerdict {
  allowed: boolean;
  /** Seconds until the caller may try again (0 when allowed). */
  retryAfter: number;
}

export class AbuseLimits {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** Counts one attempt against `bucket`; refuses past `limit` per `windowSeconds`. */
  async hit(bucket: string, limit: number, windowSeconds: number): Promise<LimitVerdict> {
    const key = `${this.prefix}:rl:${bucket}`;
    const result = await this.redis.multi().incr(key).pexpire(key, windowSeconds * 1000, 'NX').pttl(key).exec();
    const count = Number(result?.[0]?.[1] ?? 0);
    const ttl = Number(result?.[2]?.[1] ?? 0);
    return count <= limit ? { allowed: true, retryAfter: 0 } : { allowed: false, retryAfter: Math.max(1, Math.ceil(ttl / 1000)) };
  }

  /** Seconds the account (by email index key) stays locked; 0 when it is not. */
  async lockedFor(accountKey: string): Promise<number> {
    const ttl = await this.redis.pttl(`${this.prefix}:lock:${accountKey}`);
    return ttl > 0 ? Math.ceil(ttl / 1000) : 0;
  }

  /** Records a failed login; past `threshold` consecutive failures the account is locked for `lockSeconds`. */
  async recordFailure(accountKey: string, threshold: number, lockSeconds: number): Promise<void> {
    const failures = `${this.prefix}:fail:${accountKey}`;
    const result = await this.redis.multi().incr(failures).pexpire(failures, lockSeconds * 1000).exec();
    const count = Number(result?.[0]?.[1] ?? 0);
    if (count >= threshold) {
      await this.redis.multi().set(`${this.prefix}:lock:${accountKey}`, '1', 'PX', lockSeconds * 1000).del(failures).exec();
    }
  }

  async recordSuccess(accountKey: string): Promise<void> {
    await this.redis.del(`${this.prefix}:fail:${accountKey}`);
  }
}
