/**
 * Sealing personal data inside events (crypto-shredding). Each person has their
 * own 32-byte data key; a sealed value is AES-256-GCM under it, bound to the
 * person's id as additional data so a value cannot be moved to someone else's
 * event. Destroying the key makes every sealed value of that person unreadable
 * while the log itself stays byte-for-byte immutable.
 *
 * Layout: 0x01 (format version) | nonce (12) | ciphertext | tag (16).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';

const FORMAT = 0x01;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class SealError extends Error {
  readonly code = 'unsealable';
}

export function seal(key: Buffer, aad: string, plaintext: Buffer | string): Buffer {
  const nonce = randomBytes(NONCE_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(FORMAT), nonce, body, cipher.getAuthTag()]);
}

export function open(key: Buffer, aad: string, sealed: Uint8Array): Buffer {
  const buf = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
  if (buf.length < 1 + NONCE_BYTES + TAG_BYTES || buf[0] !== FORMAT) throw new SealError('not a sealed value of a known format');
  const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(1, 1 + NONCE_BYTES));
  decipher.setAAD(Buffer.from(aad, 'utf8'));
  decipher.setAuthTag(buf.subarray(buf.length - TAG_BYTES));
  try {
    return Buffer.concat([decipher.update(buf.subarray(1 + NONCE_BYTES, buf.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new SealError(`sealed value does not open for ${aad}: wrong key or altered bytes`);
  }
}

/** A purpose-bound subkey of the master key (HKDF-SHA256), so one configured secret serves every use without reuse. */
export function deriveKey(master: Buffer, purpose: string): Buffer {
  return Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), `relaygrid/${purpose}`, 32));
}
