/**
 * Email addresses: normalisation, and the index key under which an address is
 * reserved. The key is an HMAC under a subkey of the master key rather than a
 * plain hash, so the reservation subjects in the log do not let anyone confirm
 * a guessed address without the installation's secret.
 */
import { createHmac } from 'node:crypto';
import { deriveKey } from './crypto/sealing.js';

export function normaliseEmail(email: string): string {
  return email.trim().toLowerCase();
}

export class EmailIndex {
  private readonly key: Buffer;

  constructor(masterKey: Buffer) {
    this.key = deriveKey(masterKey, 'email-index');
  }

  /** Hex HMAC-SHA256 of the normalised address: the reservation subject token and the lockout key. */
  of(email: string): string {
    return createHmac('sha256', this.key).update(normaliseEmail(email)).digest('hex');
  }
}
