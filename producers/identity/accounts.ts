/**
 * Self-service account changes: registration, email verification, password
 * and email changes, privacy, proxy credentials, export, and forgetting.
 * Every change is one decision on the user aggregate; personal data is sealed
 * under the person's key before it reaches a command.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { EventMeta } from '../../contracts/envelope.js';
import { uuidv7 } from '../../contracts/ids.js';
import { DomainError } from '../decider.js';
import { openText } from './crypto/person-keys.js';
import { open, seal } from './crypto/sealing.js';
import type { Actor, IdentityDeps } from './identity-deps.js';
import { normaliseEmail } from './email.js';
import { newProxyCredentials } from './proxy-credentials.js';
import { keepingAnAdmin } from './admin-guard.js';
import { abandonRegistration, releaseEmail, reserveEmail } from './register-user.js';
import { DEFAULT_ROLES, type Role } from './roles.js';
import type { Visibility } from './privacy.js';
import type { UserState, VerificationTicket } from './user.decider.js';

export const VERIFICATION_TTL_MS = 48 * 3600 * 1000;
export const VERIFICATION_RESENDS_PER_HOUR = 5;

export interface Registration {
  email: string;
  password: string;
  displayName?: string | null;
  roles?: readonly Role[];
}

/** What a write answers: the sequence to pass back as x-min-sequence. */
export interface Written {
  userId: string;
  seq: number;
}

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/**
 * A token to mail, `<userId>.<secret>`: the notifier opens it from the outbox
 * event (sealed, with the address to send it to); only its hash decides.
 */
export function mailedToken(userId: string, email: string, sealIt: (plaintext: string) => Buffer, now: Date, ttlMs: number): { ticket: VerificationTicket; token: string } {
  const secret = randomBytes(32).toString('base64url');
  const token = `${userId}.${secret}`;
  return {
    token,
    ticket: { tokenHash: sha256(secret), tokenSealed: sealIt(token), emailSealed: sealIt(email), expiresAt: new Date(now.getTime() + ttlMs) },
  };
}

/** The user id and the hash of the secret of a mailed token; refuses one of the wrong shape. */
export function parseMailedToken(token: string, what: string): { userId: string; tokenHash: string } {
  const dot = token.indexOf('.');
  const userId = token.slice(0, dot);
  if (dot <= 0 || !/^[0-9a-f-]{36}$/.test(userId)) throw new DomainError('invalid_token', `token: this ${what} token is not valid`);
  return { userId, tokenHash: sha256(token.slice(dot + 1)) };
}

export class Accounts {
  constructor(private readonly d: IdentityDeps) {}

  /** `by` names an admin or operator creating the account; without an actor the person registers themselves. */
  async register(input: Registration, by?: Partial<Actor>, now = new Date()): Promise<Written & { verificationToken: string }> {
    const { d } = this;
    const userId = uuidv7(now.getTime());
    const actor: Actor = { ...by, actor: by?.actor ?? `user:${userId}` };
    const meta = d.meta(actor);
    const email = normaliseEmail(input.email);
    const emailHash = d.emails.of(email);
    // Hash before claiming the address, so a slow hash never holds a reservation;
    // create the person's key only once the address is theirs, so a refused
    // registration leaves nothing behind.
    const passwordHash = await d.passwords.hash(input.password);
    await reserveEmail(d.handler, emailHash, userId, meta, now);
    let token: string | undefined;
    try {
      const key = await d.keys.create(userId);
      const sealIt = (plaintext: string) => seal(key, userId, plaintext);
      const verification = mailedToken(userId, email, sealIt, now, VERIFICATION_TTL_MS);
      token = verification.token;
      const result = await this.d.decideUser(
        userId,
        {
          type: 'RegisterUser',
          userId,
          emailHash,
          emailSealed: sealIt(email),
          displayNameSealed: input.displayName ? sealIt(input.displayName) : null,
          passwordHashSealed: sealIt(passwordHash),
          roles: input.roles ?? DEFAULT_ROLES,
          credentialsSealed: sealIt(JSON.stringify(newProxyCredentials(userId))),
          verification: verification.ticket,
          at: now,
        },
        actor,
        true,
      );
      return { userId, seq: result.seq, verificationToken: verification.token };
    } catch (err) {
      const completed = await this.undoRegistration(userId, emailHash, meta, now);
      if (completed !== null && token !== undefined) return { userId, seq: completed, verificationToken: token };
      throw err;
    }
  }

  /**
   * A registration failed after claiming its address: close the user id and
   * give the address back, so the next attempt finds it free. If this fails
   * too (NATS refusing still), the next registration of the address does the
   * same before it claims. Answers the sequence when the registration turns
   * out to have been stored after all (its guard was claimed, see
   * register-user.ts), else null.
   */
  private async undoRegistration(userId: string, emailHash: string, meta: EventMeta, now: Date): Promise<number | null> {
    const { d } = this;
    try {
      const { state, seq } = await abandonRegistration(d.handler, userId, emailHash, meta, now);
      if (state.userId) return seq;
      await releaseEmail(d.handler, emailHash, userId, meta, now);
    } catch (err) {
      d.log.warn({ err, userId }, 'a failed registration was not undone; the next registration of its address will');
    }
    return null;
  }

  async verifyEmail(token: string, now = new Date()): Promise<Written> {
    const { userId, tokenHash } = parseMailedToken(token, 'verification');
    const result = await this.d.decideUser(userId, { type: 'VerifyEmail', tokenHash, at: now }, { actor: `user:${userId}` });
    return { userId, seq: result.seq };
  }

  /** A fresh verification token for the current address (the old one stops working). */
  async resendVerification(userId: string, actor: Actor, now = new Date()): Promise<Written & { verificationToken: string | null }> {
    // Each resend is a mail to the address: a few an hour, so the endpoint cannot be used to flood an inbox.
    await this.d.limits.enforce([{ bucket: `resend-verification:${userId}`, limit: VERIFICATION_RESENDS_PER_HOUR, windowSeconds: 3600 }]);
    const email = await this.currentEmail(userId);
    const { ticket, token } = mailedToken(userId, email, await this.d.sealerFor(userId), now, VERIFICATION_TTL_MS);
    const result = await this.d.decideUser(userId, { type: 'RequestEmailVerification', verification: ticket, at: now }, actor);
    return { userId, seq: result.seq, verificationToken: result.events.length > 0 ? token : null };
  }

  /**
   * Confirms a sensitive change with the current password. Rate-limited per
   * account like logins, so a stolen access token cannot be used to guess it.
   */
  async checkPassword(userId: string, password: string, field = 'password'): Promise<UserState> {
    const { d } = this;
    await d.limits.enforce([{ bucket: `confirm:${userId}`, limit: d.auth.loginPerAccountPerMinute, windowSeconds: 60 }]);
    const state = await d.loadUser(userId);
    const key = await d.keys.get(userId);
    const stored = state.passwordHashSealed && key ? open(key, userId, state.passwordHashSealed).toString('utf8') : null;
    if (!(await d.passwords.verifyOrBurn(stored, password))) throw new DomainError('wrong_password', `${field}: the current password is not correct`);
    return state;
  }

  async changePassword(userId: string, current: string, next: string, actor: Actor & { sessionId?: string }, now = new Date()): Promise<Written> {
    await this.checkPassword(userId, current, 'currentPassword');
    const sealed = (await this.d.sealerFor(userId))(await this.d.passwords.hash(next));
    const result = await this.d.decideUser(userId, { type: 'ChangePassword', passwordHashSealed: sealed, at: now }, actor);
    // Whoever else knew the old password is signed out; the session that changed it stays.
    await this.endSessions(userId, 'password_changed', actor, { except: actor.sessionId });
    return { userId, seq: result.seq };
  }

  async changeEmail(userId: string, password: string, newEmail: string, actor: Actor, now = new Date()): Promise<Written & { verificationToken: string }> {
    const { d } = this;
    const state = await this.checkPassword(userId, password);
    const email = normaliseEmail(newEmail);
    const emailHash = d.emails.of(email);
    const meta = d.meta(actor);
    await reserveEmail(d.handler, emailHash, userId, meta, now);
    const sealIt = await d.sealerFor(userId);
    const { ticket, token } = mailedToken(userId, email, sealIt, now, VERIFICATION_TTL_MS);
    const result = await this.d.decideUser(userId, { type: 'ChangeEmail', emailHash, emailSealed: sealIt(email), verification: ticket, at: now }, actor);
    if (state.emailHash && state.emailHash !== emailHash) await releaseEmail(d.handler, state.emailHash, userId, meta, now);
    return { userId, seq: result.seq, verificationToken: token };
  }

  async changePrivacy(userId: string, presence: Visibility, readReceipts: Visibility, actor: Actor, now = new Date()): Promise<Written> {
    const result = await this.d.decideUser(userId, { type: 'ChangePrivacy', presence, readReceipts, at: now }, actor);
    return { userId, seq: result.seq };
  }

  async rotateProxyCredentials(userId: string, actor: Actor, now = new Date()): Promise<Written> {
    const sealed = (await this.d.sealerFor(userId))(JSON.stringify(newProxyCredentials(userId)));
    const result = await this.d.decideUser(userId, { type: 'RotateProxyCredentials', credentialsSealed: sealed, at: now }, actor);
    return { userId, seq: result.seq };
  }

  /**
   * Forgets the person: the event first (the durable intent; the users
   * projector also destroys the key when it applies it, so a crash right after
   * the append still ends with the key gone), then the key, the address and
   * every session.
   */
  async forget(userId: string, actor: Actor, now = new Date()): Promise<Written> {
    const { d } = this;
    // The last active admin cannot forget themselves: nobody could administer the installation after.
    const result = await keepingAnAdmin(d, userId, (otherActiveAdmins) => d.decideUser(userId, { type: 'Forget', otherActiveAdmins, at: now }, actor));
    await d.keys.forget(userId);
    // A forgotten user keeps the reservation key of their address, so it can be released.
    if (result.state.emailHash) await releaseEmail(d.handler, result.state.emailHash, userId, d.meta(actor), now);
    await d.revocations.revokeUser(userId);
    await this.endSessions(userId, 'forgotten', actor, { tokensRevoked: true });
    return { userId, seq: result.seq };
  }

  /**
   * Ends sessions with an event each and kills their access tokens everywhere,
   * one by one unless the caller already revoked every token of the user.
   */
  async endSessions(
    userId: string,
    reason: 'password_changed' | 'suspended' | 'forgotten',
    actor: Actor,
    opts: { except?: string; tokensRevoked?: boolean } = {},
  ): Promise<void> {
    const { d } = this;
    for (const sessionId of await d.sessions.revokeAll(userId, opts.except)) {
      await d.endSession(sessionId, reason, actor, { revokeTokens: !opts.tokensRevoked }).catch((err: unknown) => d.log.warn({ err, sessionId }, 'session end not recorded'));
    }
  }

  async currentEmail(userId: string, state?: UserState): Promise<string> {
    const user = state ?? (await this.d.loadUser(userId));
    const email = openText(await this.d.keys.get(userId), userId, user.emailSealed);
    if (!email) throw new DomainError('user_forgotten', 'this account was deleted');
    return email;
  }

  /**
   * Everything held about the person, as JSON: the read-model rows, live
   * sessions, API keys, and every event of their account with sealed fields
   * opened.
   */
  async export(userId: string): Promise<Record<string, unknown>> {
    const { d } = this;
    const key = await d.keys.get(userId);
    const { events } = await d.handler.store.read(d.userSubject(userId));
    const [profile, credentials, apiKeys, sessions] = await Promise.all([
      d.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst(),
      d.db.selectFrom('proxy_credentials').selectAll().where('user_id', '=', userId).executeTakeFirst(),
      d.db.selectFrom('api_keys').select(['id', 'name', 'roles', 'issued_at', 'revoked_at']).where('user_id', '=', userId).execute(),
      d.sessions.list(userId),
    ]);
    return {
      exportedAt: new Date().toISOString(),
      profile: profile ?? null,
      proxyCredentials: credentials ?? null,
      apiKeys,
      sessions,
      events: events.map((e) => ({ id: e.id, type: e.ceType, time: e.time.toISOString(), actor: e.meta.actor ?? null, data: unsealed(e.data as object, key, userId) })),
    };
  }

}

/** Event data with every `…Sealed` field opened (JSON where it is JSON) and bytes elsewhere as base64. */
function unsealed(data: object, key: Buffer | undefined, userId: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(data)) {
    if (name.endsWith('Sealed') && Buffer.isBuffer(value)) {
      const text = openText(key, userId, value);
      const field = name.slice(0, -'Sealed'.length);
      out[field] = text !== null && text.startsWith('{') ? (JSON.parse(text) as unknown) : text;
      if (field === 'passwordHash') out[field] = '(argon2id hash, withheld)';
    } else if (Buffer.isBuffer(value)) out[name] = value.toString('base64');
    else if (value instanceof Date) out[name] = value.toISOString();
    else out[name] = value;
  }
  return out;
}
