/**
 * Small pieces of expiring authentication state in Redis, shared by every API
 * process: the TOTP secret of an enrollment not yet confirmed, the last TOTP
 * step accepted (so a code cannot be replayed), and when each API key was last
 * used.
 */
import type { Redis } from 'ioredis';

const PENDING_TOTP_TTL_SECONDS = 600;
/** A TOTP step is 30 s and codes are accepted ±1 step: remember the last one a little longer. */
const TOTP_STEP_TTL_SECONDS = 120;
const API_KEY_USE_TTL_SECONDS = 90 * 24 * 3600;

export class AuthState {
  /** Last-use writes already made by this process, so a busy key costs one write a minute, not one per request. */
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(name: string): string {
    return `${this.prefix}:${name}`;
  }

  pendingTotp(userId: string): Promise<string | null> {
    return this.redis.get(this.key(`totp-pending:${userId}`));
  }

  async setPendingTotp(userId: string, secret: string): Promise<void> {
    await this.redis.set(this.key(`totp-pending:${userId}`), secret, 'EX', PENDING_TOTP_TTL_SECONDS);
  }

  async clearPendingTotp(userId: string): Promise<void> {
    await this.redis.del(this.key(`totp-pending:${userId}`));
  }

  async lastTotpStep(userId: string): Promise<number> {
    return Number((await this.redis.get(this.key(`totp-step:${userId}`))) ?? -1);
  }

  async setLastTotpStep(userId: string, step: number): Promise<void> {
    await this.redis.set(this.key(`totp-step:${userId}`), String(step), 'EX', TOTP_STEP_TTL_SECONDS);
  }

  async apiKeyUsed(keyId: string, at = Date.now()): Promise<void> {
    const name = `apikey-used:${keyId}`;
    if ((this.touched.get(name) ?? 0) > at - 60_000) return;
    this.touched.set(name, at);
    if (this.touched.size > 10_000) this.touched.clear();
    await this.redis.set(this.key(name), String(at), 'EX', API_KEY_USE_TTL_SECONDS);
  }

  /** When each key was last used (ms), or null. */
  async apiKeysLastUsed(keyIds: readonly string[]): Promise<(number | null)[]> {
    if (keyIds.length === 0) return [];
    const values = await this.redis.mget(keyIds.map((id) => this.key(`apikey-used:${id}`)));
    return values.map((v) => (v ? Number(v) : null));
  }
}
