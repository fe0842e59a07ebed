/**
 * Rate limits and account lockout in Redis, shared by every API process.
 *
 * Windows are fixed (INCR with an expiry set on the first hit): cheap, and a
 * burst at a window edge is at most twice the limit. Lockout counts failed
 * logins per email index key, whether or not an account has that address, so
 * a locked answer never tells an attacker that the email exists.
 */
import type { Redis } from 'ioredis';
import { AuthError } from './auth-error.js';

/** One fixed window: at most `limit` attempts per `windowSeconds` in `bucket`. */
export interface Window {
  bucket: string;
  limit: number;
  windowSeconds: number;
}

export class AbuseLimits {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /**
   * Counts one attempt against every window and, when asked, reads the
   * account's lock, in one round trip; throws 429 `rate_limited` or
   * `account_locked` with Retry-After.
   */
  async enforce(windows: readonly Window[], lockedAccount?: string): Promise<void> {
    const tx = this.redis.multi();
    for (const w of windows) {
      const key = `${this.prefix}:rl:${w.bucket}`;
      tx.incr(key).pexpire(key, w.windowSeconds * 1000, 'NX').pttl(key);
    }
    if (lockedAccount !== undefined) tx.pttl(`${this.prefix}:lock:${lockedAccount}`);
    const results = (await tx.exec()) ?? [];
    const reply = (i: number) => Number(results[i]?.[1] ?? 0);
    for (let i = 0; i < windows.length; i++) {
      if (reply(3 * i) <= windows[i]!.limit) continue;
      const retryAfter = Math.max(1, Math.ceil(reply(3 * i + 2) / 1000));
      throw new AuthError(429, 'rate_limited', `too many attempts: try again in ${retryAfter} s`, retryAfter);
    }
    const lockTtl = lockedAccount === undefined ? 0 : reply(3 * windows.length);
    if (lockTtl > 0) {
      const retryAfter = Math.ceil(lockTtl / 1000);
      throw new AuthError(429, 'account_locked', `too many failed logins: try again in ${retryAfter} s`, retryAfter);
    }
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
