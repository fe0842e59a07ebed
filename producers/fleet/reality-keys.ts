/**
 * REALITY key material. Keys are X25519, written as raw 32 bytes in base64url
 * without padding (43 characters): exactly what `xray x25519` prints and what
 * Xray reads in `privateKey` / `publicKey`. A JWK's `d` and `x` are that same
 * encoding, so they are used as they come.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, randomInt } from 'node:crypto';

export interface RealityKeys {
  privateKey: string;
  publicKey: string;
}

export const REALITY_KEY_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function generateRealityKeys(): RealityKeys {
  const { privateKey } = generateKeyPairSync('x25519');
  const jwk = privateKey.export({ format: 'jwk' });
  if (!jwk.d || !jwk.x) throw new Error('X25519 JWK export lacks d or x');
  return { privateKey: jwk.d, publicKey: jwk.x };
}

// PKCS#8 wrapping of a raw X25519 private key (RFC 8410): this prefix, then the 32 bytes.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * The public key of a raw private key. Node's JWK import wants `x` alongside
 * `d`, so the raw key goes through PKCS#8 instead; used to check an imported
 * private key against the public key in share links.
 */
export function realityPublicKey(privateKey: string): string {
  const raw = Buffer.from(privateKey, 'base64url');
  if (!REALITY_KEY_PATTERN.test(privateKey) || raw.length !== 32) throw new RangeError('a REALITY private key is 32 bytes in base64url (43 characters)');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  const x = createPublicKey(key).export({ format: 'jwk' }).x;
  if (!x) throw new Error('X25519 JWK export lacks x');
  return x;
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
