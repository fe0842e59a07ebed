/**
 * One-time recovery codes for when the TOTP device is lost. Only hashes are
 * stored; the plaintext is shown to the user once at generation time.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';

/** Lower case without 0/o/1/l/i, so codes survive being read off paper. 31 symbols. */
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const CODE_LENGTH = 10;

function randomCode(): string {
  let raw = '';
  // randomInt is rejection-sampled, so a 31-symbol alphabet has no modulo bias.
  for (let i = 0; i < CODE_LENGTH; i++) raw += ALPHABET[randomInt(ALPHABET.length)];
  return `${raw.slice(0, 5)}-${raw.slice(5)}`;
}

/** `count` distinct codes formatted `xxxxx-xxxxx` (~49.5 bits of entropy each). */
export function generateRecoveryCodes(count = 10): string[] {
  if (!Number.isInteger(count) || count < 1 || count > 100) throw new Error(`invalid recovery code count ${count}`);
  const codes = new Set<string>();
  while (codes.size < count) codes.add(randomCode());
  return [...codes];
}

function normalise(code: string): string {
  return code.toLowerCase().replace(/[\s-]/g, '');
}

/**
 * Hex SHA-256 of the normalised code. A fast unsalted hash is fine here
 * (unlike passwords): the codes are ~49.5 bits of server-generated randomness,
 * so there is no dictionary to attack and brute force is infeasible.
 */
export function hashRecoveryCode(code: string): string {
  return createHash('sha256').update(normalise(code)).digest('hex');
}

/**
 * Index of the stored hash matching `code`, or -1. Every hash is compared in
 * constant time and the loop never exits early, so timing does not reveal
 * which slot matched. The caller removes the matched hash (codes are single use).
 */
export function matchRecoveryCode(code: string, hashes: readonly string[]): number {
  if (normalise(code).length === 0) return -1;
  const given = Buffer.from(hashRecoveryCode(code), 'utf8');
  let found = -1;
  hashes.forEach((stored, i) => {
    const candidate = Buffer.from(stored.toLowerCase(), 'utf8');
    const equal = candidate.length === given.length && timingSafeEqual(candidate, given);
    if (equal && found === -1) found = i;
  });
  return found;
}
