/**
 * REALITY key material. Keys are X25519, written as raw 32 bytes in base64url
 * without padding (43 characters): exactly what `xray x25519` prints and what
 * Xray reads in `privateKey` / `publicKey`. A JWK's `d` and `x` are that same
 * encoding, so they are used as they come.
 */
import { generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';

export interface RealityKeys {
  privateKey: string;
  publicKey: string;
}

export function generateRealityKeys(): RealityKeys {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' });
  if (!jwk.d || !jwk.x) throw new Error('X25519 JWK export lacks d or x');
  return { privateKey: jwk.d, publicKey: jwk.x };
}

/** Xray's limit: a short id is hex of even length, at most 16 characters (8 bytes). */
export const MAX_SHORT_ID_BYTES = 8;

/**
 * `n` distinct random short ids. The first is the full 16 hex characters
 * (it is the one put in share links); the others vary in length (2 to 16,
 * even) so the set does not all look alike.
 */
export function generateShortIds(n: number): string[] {
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new RangeError('short id count must be an integer 1-64');
  const ids = new Set<string>([randomBytes(MAX_SHORT_ID_BYTES).toString('hex')]);
  while (ids.size < n) ids.add(randomBytes(randomInt(1, MAX_SHORT_ID_BYTES + 1)).toString('hex'));
  return [...ids];
}
