/**
 * The shape of the public keys clients upload: canonical base64 of the right
 * length. The server never verifies a signature (the XEdDSA check belongs to
 * the clients, who must not trust the server anyway); it only refuses what
 * cannot be a key, so junk never reaches the log or another user's device.
 */
import { DomainError } from '../decider.js';

/** 32-byte Curve25519 keys, or 33 with Signal's 0x05 type byte. */
const PUBLIC_KEY_BYTES = [32, 33];
const SIGNATURE_BYTES = [64];
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export interface OneTimePreKey {
  id: number;
  publicKey: string;
}

function check(field: string, value: string, lengths: readonly number[], what: string): void {
  // Round-tripping refuses non-canonical encodings, which Buffer.from would quietly accept.
  const bytes = BASE64.test(value) && value.length % 4 === 0 ? Buffer.from(value, 'base64') : undefined;
  if (!bytes || bytes.toString('base64') !== value || !lengths.includes(bytes.length)) {
    throw new DomainError('invalid_key', `${field}: must be ${what} as standard base64 (${lengths.join(' or ')} bytes)`, { field });
  }
}

export function checkPublicKey(field: string, value: string): void {
  check(field, value, PUBLIC_KEY_BYTES, 'a public key');
}

export function checkSignature(field: string, value: string): void {
  check(field, value, SIGNATURE_BYTES, 'a signature');
}

/** Every key well formed and every id once: a batch is stored whole or not at all. */
export function checkOneTimePreKeys(field: string, keys: readonly OneTimePreKey[]): void {
  const ids = new Set<number>();
  keys.forEach((key, i) => {
    if (ids.has(key.id)) throw new DomainError('invalid_key', `${field}.${i}.id: key id ${key.id} appears twice`, { field: `${field}.${i}.id` });
    ids.add(key.id);
    checkPublicKey(`${field}.${i}.publicKey`, key.publicKey);
  });
}
