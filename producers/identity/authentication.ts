/**
 * Logging in and staying logged in: password (and second factor) checks with
 * rate limits and lockout, sessions with rotating refresh tokens, access-token
 * and API-key authentication of requests, and TOTP enrollment.
 */
import { createHash, randomBytes } from 'node:crypto';
import { uuidv7 } from '../../contracts/ids.js';
import { DomainError } from '../decider.js';
import { AuthError } from './auth-error.js';
import { apiKeyDecider } from './api-key.decider.js';
import { open, seal } from './crypto/sealing.js';
import type { Actor, IdentityDeps } from './identity-deps.js';
import { generateRecoveryCodes, hashRecoveryCode, matchRecoveryCode } from './recovery-codes.js';
import { ownerOfEmail } from './register-user.js';
import type { Role } from './roles.js';
import { sessionDecider, type SessionEndReason } from './session.decider.js';
import { generateTotpSecret, otpauthUri, verifyTotp } from './totp.js';
import type { UserState } from './user.decider.js';


export interface Principal {
  userId: string;
  roles: Role[];
  /** Set for a person's session token. */
  sessionId?: string;
  /** Set when the request came with an API key. */
  apiKeyId?: string;
  /** When a session token was issued (ms): a revocation covers the tokens issued up to its instant. */
  issuedAt?: number;
}

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  tokenType: 'Bearer';
}

export interface ClientInfo {
  ip: string;
  device: string;
}

const API_KEY_PREFIX = 'rgk_';
const INVALID_CREDENTIALS = 'the email or password is not correct';
/** Stands in for the owner of an unknown email, so its login does the same reads as a known one's. */
export const NOBODY = '00000000-0000-7000-8000-000000000000';
/** Registration attempts per address per hour: enough for typos and retries, too few to probe with. */
const REGISTRATIONS_PER_ADDRESS_PER_HOUR = 10;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

export class Authentication {
  constructor(private readonly d: IdentityDeps) {}

  /**
   * Same answer and the same argon2 work for an unknown email and a wrong
   * password; lockout is keyed by the email's index key, existing or not.
   */
  async login(input: { email: string; password: string; totp?: string }, client: ClientInfo, now = new Date()): Promise<Tokens & { userId: string }> {
    const { d } = this;
    const { auth } = d;
    const accountKey = d.emails.of(input.email);
    await d.limits.enforce(
      [
        { bucket: `login-ip:${client.ip}`, limit: auth.loginPerIpPerMinute, windowSeconds: 60 },
        { bucket: `login-acct:${accountKey}`, limit: auth.loginPerAccountPerMinute, windowSeconds: 60 },
      ],
      accountKey,
    );

    // An unknown email reads a (never existing) user and key too: the same I/O as a real one, not only the same argon2 work.
    const userId = await ownerOfEmail(d.handler, accountKey);
    const [state, key] = await Promise.all([d.loadUser(userId ?? NOBODY), d.keys.get(userId ?? NOBODY)]);
    const stored = userId && key && state.passwordHashSealed && state.status !== 'forgotten' ? open(key, userId, state.passwordHashSealed).toString('utf8') : null;
    const ok = await d.passwords.verifyOrBurn(stored, input.password);
    if (!ok || !userId || !key) {
      await d.limits.recordFailure(accountKey, auth.lockoutThreshold, auth.lockoutSeconds);
      throw new AuthError(401, 'invalid_credentials', INVALID_CREDENTIALS);
    }
    const method = await this.secondFactor(userId, state, key, input.totp, accountKey, now);
    await d.limits.recordSuccess(accountKey);
    if (state.status === 'suspended') throw new AuthError(403, 'account_suspended', 'this account is suspended');
    return { userId, ...(await this.startSession(userId, key, state.roles, method, client, now)) };
  }

  private async secondFactor(userId: string, state: UserState, key: Buffer, code: string | undefined, accountKey: string, now: Date): Promise<string> {
    if (!state.totp) return 'password';
    const { d } = this;
    if (!code) throw new AuthError(401, 'totp_required', 'totp: this account needs a one-time code or a recovery code');
    const secret = open(key, userId, state.totp.secretSealed).toString('utf8');
    if (/^\d{6}$/.test(code)) {
      const lastUsed = await d.authState.lastTotpStep(userId);
      const result = verifyTotp(secret, code, now.getTime(), { lastUsedStep: lastUsed });
      if (result.ok) {
        await d.authState.setLastTotpStep(userId, result.step);
        return 'password+totp';
      }
    } else {
      const index = matchRecoveryCode(code, state.totp.recoveryCodeHashes);
      if (index >= 0 && !state.totp.used.includes(index)) {
        await d.decideUser(userId, { type: 'UseRecoveryCode', index, at: now }, { actor: `user:${userId}` });
        return 'password+recovery';
      }
    }
    await d.limits.recordFailure(accountKey, d.auth.lockoutThreshold, d.auth.lockoutSeconds);
    throw new AuthError(401, 'invalid_totp', 'totp: the code is not valid');
  }

  /** Registration's limits, per client IP and per address, beside the login limits. */
  limitRegistration(ip: string, email: string): Promise<void> {
    const { auth } = this.d;
    return this.d.limits.enforce([
      { bucket: `register-ip:${ip}`, limit: auth.registerPerIpPerHour, windowSeconds: 3600 },
      { bucket: `register-acct:${this.d.emails.of(email)}`, limit: REGISTRATIONS_PER_ADDRESS_PER_HOUR, windowSeconds: 3600 },
    ]);
  }

  private async startSession(userId: string, key: Buffer, roles: Role[], method: string, client: ClientInfo, now: Date): Promise<Tokens> {
    const { d } = this;
    const sessionId = uuidv7(now.getTime());
    await d.handler.handle(
      sessionDecider,
      d.sessionSubject(sessionId),
      { type: 'StartSession', sessionId, userId, method, detailsSealed: seal(key, userId, JSON.stringify(client)), at: now },
      { meta: d.meta({ actor: `user:${userId}` }), assumeNew: true },
    );
    const refreshToken = await d.sessions.create({ id: sessionId, userId, device: client.device, ip: client.ip, createdAt: now.getTime() });
    return this.tokens(userId, sessionId, roles, refreshToken);
  }

  private tokens(userId: string, sessionId: string, roles: Role[], refreshToken: string): Tokens {
    return { accessToken: this.d.tokens.issue(userId, sessionId, roles), refreshToken, expiresIn: this.d.tokens.ttlSeconds, tokenType: 'Bearer' };
  }

  /** Rotates the refresh token; a token used twice ends its whole family. */
  async refresh(refreshToken: string, client: ClientInfo): Promise<Tokens> {
    const { d } = this;
    const rotated = await d.sessions.rotate(refreshToken, client.ip);
    if (rotated.outcome === 'reused') {
      d.log.warn({ userId: rotated.userId, sessionId: rotated.sessionId }, 'refresh token reused: session family revoked');
      await this.recordEnd(rotated.userId, rotated.sessionId, 'reuse_detected');
      throw new AuthError(401, 'refresh_token_reused', 'this refresh token was already used: every token of its session is revoked, log in again');
    }
    if (rotated.outcome !== 'rotated') throw new AuthError(401, 'invalid_refresh_token', 'refreshToken: not a valid refresh token');
    const state = await d.loadUser(rotated.userId);
    if (state.status !== 'active') {
      await this.recordEnd(rotated.userId, rotated.sessionId, state.status === 'suspended' ? 'suspended' : 'forgotten');
      throw new AuthError(403, state.status === 'suspended' ? 'account_suspended' : 'account_deleted', `this account is ${state.status}`);
    }
    return this.tokens(rotated.userId, rotated.sessionId, state.roles, rotated.refreshToken);
  }

  async logout(principal: Principal): Promise<void> {
    if (!principal.sessionId) return;
    await this.revokeSession(principal.userId, principal.sessionId, 'logout');
  }

  /** Ends one of the user's sessions; someone else's id answers like an unknown one. */
  async revokeSession(userId: string, sessionId: string, reason: SessionEndReason = 'revoked'): Promise<void> {
    const live = await this.d.sessions.revoke(userId, sessionId);
    if (!live) throw new AuthError(404, 'session_not_found', `no session ${sessionId}`);
    await this.recordEnd(userId, sessionId, reason);
  }

  private recordEnd(userId: string, sessionId: string, reason: SessionEndReason): Promise<void> {
    return this.d.endSession(sessionId, reason, { actor: `user:${userId}` });
  }

  /** A bearer credential is an API key (`rgk_…`) or else an access JWT. */
  isApiKey(bearer: string): boolean {
    return bearer.startsWith(API_KEY_PREFIX);
  }

  /** JWT check only: signature, expiry, and the in-memory revocation list. No I/O. */
  authenticateToken(token: string): Principal {
    let claims;
    try {
      claims = this.d.tokens.verify(token);
    } catch (err) {
      throw new AuthError(401, (err as { code?: string }).code ?? 'invalid_token', (err as Error).message);
    }
    if (this.d.revocations.isRevoked(claims)) throw new AuthError(401, 'token_revoked', 'this access token was revoked: log in again');
    return { userId: claims.sub, roles: claims.roles, sessionId: claims.sid, issuedAt: claims.ims };
  }

  /**
   * `rgk_<key id>_<secret>`. Read from the key's own aggregate (cached state
   * plus a last-sequence check), so a revocation counts at once; the key's
   * roles are cut down to those its owner still holds.
   */
  async authenticateApiKey(presented: string): Promise<Principal> {
    const { d } = this;
    const match = /^rgk_([0-9a-f-]{36})_([A-Za-z0-9_-]{20,100})$/.exec(presented);
    const invalid = new AuthError(401, 'invalid_api_key', 'the API key is not valid');
    if (!match) throw invalid;
    const [, keyId, secret] = match as unknown as [string, string, string];
    const { state } = await d.handler.load(apiKeyDecider, d.handler.store.names.aggregate('identity', 'apikey', keyId));
    if (!state.userId || state.revoked || state.secretHash !== sha256(secret)) throw invalid;
    const owner = await d.loadUser(state.userId);
    if (owner.status !== 'active') throw invalid;
    void d.authState.apiKeyUsed(keyId).catch(() => undefined);
    return { userId: state.userId, roles: state.roles.filter((r) => owner.roles.includes(r)), apiKeyId: keyId };
  }

  /** Step 1 of TOTP: a secret held in Redis until the user proves their app has it. */
  async beginTotp(userId: string): Promise<{ secret: string; otpauthUri: string }> {
    const state = await this.d.loadUser(userId);
    if (state.totp) throw new DomainError('totp_already_enabled', 'a second factor is already enabled: disable it first');
    const secret = generateTotpSecret();
    await this.d.authState.setPendingTotp(userId, secret);
    return { secret, otpauthUri: otpauthUri(secret, userId) };
  }

  /** Step 2: a valid code enables TOTP; the recovery codes are shown this once. */
  async confirmTotp(userId: string, code: string, actor: Actor, now = new Date()): Promise<{ recoveryCodes: string[]; seq: number }> {
    const { d } = this;
    const secret = await d.authState.pendingTotp(userId);
    if (!secret) throw new DomainError('totp_not_started', 'start enrollment first: POST /v1/account/totp');
    const result = verifyTotp(secret, code, now.getTime());
    if (!result.ok) throw new DomainError('invalid_totp', 'code: the code is not valid');
    const recoveryCodes = generateRecoveryCodes();
    const written = await d.decideUser(userId, { type: 'EnableTotp', secretSealed: (await d.sealerFor(userId))(secret), recoveryCodeHashes: recoveryCodes.map(hashRecoveryCode), at: now }, actor);
    await d.authState.setLastTotpStep(userId, result.step);
    await d.authState.clearPendingTotp(userId);
    return { recoveryCodes, seq: written.seq };
  }

  async disableTotp(userId: string, actor: Actor, now = new Date()): Promise<number> {
    const { d } = this;
    return (await d.decideUser(userId, { type: 'DisableTotp', at: now }, actor)).seq;
  }
}

/** A new API key: `rgk_<id>_<secret>`, shown once; only the secret's hash is stored. */
export function newApiKeySecret(): { secret: string; hash: string } {
  const secret = randomBytes(32).toString('base64url');
  return { secret, hash: sha256(secret) };
}

export function formatApiKey(keyId: string, secret: string): string {
  return `${API_KEY_PREFIX}${keyId}_${secret}`;
}
