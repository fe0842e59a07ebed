/**
 * Resetting a forgotten password by mail (docs/identity.md#password-reset).
 *
 * The request answers the same whatever the address: the same status and
 * body, the same reads (the address's owner, a user and a key — of nobody for
 * an unknown address), the same argon2id hash, the same sealing, and an
 * answer no sooner than a fixed floor, so the append a known address adds
 * hides inside it. The token (`<userId>.<secret>`) travels sealed in
 * `PasswordResetRequested` to the notifier; only its hash decides. It expires
 * after RESET_TTL_MS and is spent by any password change; confirming it sets
 * the password and ends every session of the account.
 */
import { randomBytes } from 'node:crypto';
import { seal } from './crypto/sealing.js';
import type { IdentityDeps } from './identity-deps.js';
import { mailedToken, parseMailedToken, type Accounts, type Written } from './accounts.js';
import { normaliseEmail } from './email.js';
import { ownerOfEmail } from './register-user.js';
import { NOBODY } from './authentication.js';

export const RESET_TTL_MS = 3600 * 1000;
/** Requests per address per hour (the same bucket whether the address exists or not). */
export const RESETS_PER_ADDRESS_PER_HOUR = 5;
export const RESETS_PER_IP_PER_HOUR = 30;
/** No answer sooner than this: longer than the request's work on a loaded machine, so both answers take it. */
export const RESET_ANSWER_FLOOR_MS = 400;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class PasswordReset {
  constructor(
    private readonly d: IdentityDeps,
    private readonly accounts: Accounts,
    private readonly floorMs = RESET_ANSWER_FLOOR_MS,
  ) {}

  /** Always resolves the same way (or 429 alike for both): whether a mail goes out is not the caller's to learn. */
  async request(input: { email: string }, ip: string, now = new Date()): Promise<void> {
    const started = performance.now();
    const { d } = this;
    const email = normaliseEmail(input.email);
    const accountKey = d.emails.of(email);
    await d.limits.enforce([
      { bucket: `reset-ip:${ip}`, limit: RESETS_PER_IP_PER_HOUR, windowSeconds: 3600 },
      { bucket: `reset-acct:${accountKey}`, limit: RESETS_PER_ADDRESS_PER_HOUR, windowSeconds: 3600 },
    ]);
    const owner = await ownerOfEmail(d.handler, accountKey);
    const userId = owner ?? NOBODY;
    const [state, key] = await Promise.all([d.loadUser(userId), d.keys.get(userId)]);
    // Constant work: the same hash and sealing for a stranger, under a throwaway key.
    await d.passwords.hash(randomBytes(16).toString('base64url'));
    const sealKey = key ?? randomBytes(32);
    const { ticket } = mailedToken(userId, email, (text) => seal(sealKey, userId, text), now, RESET_TTL_MS);
    if (owner && key && state.status === 'active') {
      await d.decideUser(userId, { type: 'RequestPasswordReset', reset: ticket, at: now }, { actor: `user:${userId}` }).catch((err: unknown) => {
        // The answer stays the same; the person can ask again.
        d.log.warn({ err, userId }, 'password reset request not recorded');
      });
    }
    const spent = performance.now() - started;
    if (spent > this.floorMs) d.log.warn({ spentMs: Math.round(spent), floorMs: this.floorMs }, 'password reset request outlasted its answer floor: its timing may tell');
    await sleep(Math.max(0, this.floorMs - spent));
  }

  /** Sets the new password, spends the token, and signs the account out everywhere. */
  async confirm(token: string, password: string, now = new Date()): Promise<Written> {
    const { d } = this;
    const { userId, tokenHash } = parseMailedToken(token, 'password reset');
    const sealIt = await d.sealerFor(userId);
    const passwordHashSealed = sealIt(await d.passwords.hash(password));
    const actor = { actor: `user:${userId}` };
    const result = await d.decideUser(userId, { type: 'ResetPassword', tokenHash, passwordHashSealed, at: now }, actor);
    // Whoever held a session may be who took the account over: every token of the user dies now.
    await d.revocations.revokeUser(userId);
    await this.accounts.endSessions(userId, 'password_changed', actor, { tokensRevoked: true });
    return { userId, seq: result.seq };
  }
}
