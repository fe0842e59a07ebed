/**
 * Password hashing with argon2id at OWASP's recommended parameters
 * (m = 19 MiB, t = 2, p = 1). Hashing runs on libuv's thread pool, so the event
 * loop keeps serving while a login verifies.
 *
 * `verifyOrBurn` does the same work whether or not the account exists: with no
 * stored hash it verifies against a dummy hash made with the same parameters,
 * so the answer time does not tell an attacker which emails are registered.
 */
import { Algorithm, hash, verify } from '@node-rs/argon2';

export const ARGON2_PARAMS = { algorithm: Algorithm.Argon2id, memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN_LENGTH = 10;
/** Long enough for any passphrase, short enough that hashing cannot be used to burn CPU. */
export const PASSWORD_MAX_LENGTH = 256;

export class PasswordHasher {
  private dummy: Promise<string> | undefined;

  hash(password: string): Promise<string> {
    return hash(password, ARGON2_PARAMS);
  }

  /** True when `password` matches `stored`; with no stored hash, burns the same time and answers false. */
  async verifyOrBurn(stored: string | null | undefined, password: string): Promise<boolean> {
    if (stored) return verify(stored, password).catch(() => false);
    this.dummy ??= hash('relaygrid-timing-equaliser', ARGON2_PARAMS);
    await verify(await this.dummy, password).catch(() => false);
    return false;
  }
}
