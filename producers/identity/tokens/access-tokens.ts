/**
 * Short-lived access tokens: HS256 JWTs signed with a subkey of the master key.
 * Verification is synchronous and cached per token until the token expires, so checking a token on a read route costs a hash and a map lookup
 * after its first use.
 */
import { createSigner, createVerifier, TokenError } from 'fast-jwt';
import { Lru } from '../../event-store/lru.js';
import { deriveKey } from '../crypto/sealing.js';
import type { Role } from '../roles.js';

export interface AccessClaims {
  /** The user. */
  sub: string;
  /** The session (refresh-token family) the token belongs to. */
  sid: string;
  roles: Role[];
  /** Issued-at in milliseconds: revocations compare against it at sub-second precision. */
  ims: number;
  iat?: number;
  exp?: number;
}

export class InvalidTokenError extends Error {
  constructor(
    readonly code: 'token_expired' | 'invalid_token',
    message: string,
  ) {
    super(message);
  }
}

export class AccessTokens {
  private readonly sign: (payload: Omit<AccessClaims, 'iat' | 'exp'>) => string;
  private readonly check: (token: string) => AccessClaims;

  constructor(
    masterKey: Buffer,
    readonly ttlSeconds: number,
  ) {
    const key = deriveKey(masterKey, 'access-token-hs256');
    this.sign = createSigner({ key, algorithm: 'HS256', expiresIn: ttlSeconds * 1000, iss: 'relaygrid' });
    this.check = createVerifier({ key, algorithms: ['HS256'], allowedIss: 'relaygrid', requiredClaims: ['sub', 'sid', 'exp'] });
  }

  issue(userId: string, sessionId: string, roles: readonly Role[], now = Date.now()): string {
    return this.sign({ sub: userId, sid: sessionId, roles: [...roles], ims: now });
  }

  /**
   * Verified claims by token, until the token expires. Our own cache rather
   * than fast-jwt's: its key is a streaming SHA-256 of the token per request
   * (a third of an authenticated read's CPU), meant to keep raw tokens out of
   * its cache; this process holds each token in the request anyway, and a
   * token is its own collision-free key.
   */
  private readonly verified = new Lru<string, AccessClaims>(10_000);

  verify(token: string, now = Date.now()): AccessClaims {
    const cached = this.verified.get(token);
    if (cached && (cached.exp ?? 0) * 1000 > now) return cached;
    try {
      const claims = this.check(token);
      this.verified.set(token, claims);
      return claims;
    } catch (err) {
      if (err instanceof TokenError && err.code === TokenError.codes.expired) throw new InvalidTokenError('token_expired', 'the access token has expired: refresh it');
      throw new InvalidTokenError('invalid_token', 'the access token is not valid');
    }
  }
}
