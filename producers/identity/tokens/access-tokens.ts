/**
 * Short-lived access tokens: HS256 JWTs signed with a subkey of the master key.
 * Verification is synchronous and cached per token (fast-jwt), so checking a
 * token on a read route costs a hash lookup after its first use.
 */
import { hash } from 'node:crypto';
import { createSigner, createVerifier, TokenError } from 'fast-jwt';
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
    this.check = createVerifier({
      key,
      algorithms: ['HS256'],
      allowedIss: 'relaygrid',
      requiredClaims: ['sub', 'sid', 'exp'],
      cache: 10_000,
      // fast-jwt's default cache key is a streaming createHash per request, which was
      // a third of an authenticated read's CPU; the one-shot hash keeps raw tokens out
      // of memory just the same at a fraction of the cost.
      cacheKeyBuilder: (token) => hash('sha256', token, 'base64'),
    });
  }

  issue(userId: string, sessionId: string, roles: readonly Role[], now = Date.now()): string {
    return this.sign({ sub: userId, sid: sessionId, roles: [...roles], ims: now });
  }

  verify(token: string): AccessClaims {
    try {
      return this.check(token);
    } catch (err) {
      if (err instanceof TokenError && err.code === TokenError.codes.expired) throw new InvalidTokenError('token_expired', 'the access token has expired: refresh it');
      throw new InvalidTokenError('invalid_token', 'the access token is not valid');
    }
  }
}
