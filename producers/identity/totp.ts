/**
 * RFC 6238 TOTP (HMAC-SHA1, 30 s step, 6 digits), the profile every
 * authenticator app understands. Pure functions over `node:crypto` so the
 * decider and tests can pass the clock in instead of reading it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

const BASE32_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** 160 bits: the HMAC-SHA1 block-size-friendly length RFC 4226 recommends. */
const SECRET_BYTES = 20;

/** New shared secret for enrolment, base32 because that is what QR/otpauth URIs carry. */
export function generateTotpSecret(): string {
  return base32Encode(randomBytes(SECRET_BYTES));
}

/** RFC 4648 base32, upper case, no `=` padding (authenticator apps do not want it). */
export function base32Encode(buf: Buffer): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of buf) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(value << (5 - bits)) & 31];
  return out;
}

/**
 * Lenient on presentation (case, spaces, `=` padding) because users type
 * secrets in by hand, strict on the alphabet so a typo fails loudly instead of
 * silently producing a different key. Leftover bits below a byte are dropped.
 */
export function base32Decode(text: string): Buffer {
  const clean = text.replace(/[\s=]/g, '').toUpperCase();
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of clean) {
    const idx = BASE32_ALPHABET.indexOf(ch);
    if (idx < 0) throw new Error(`invalid base32 character ${JSON.stringify(ch)}`);
    value = ((value << 5) | idx) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

function counterAt(atMs: number, step: number): number {
  if (!Number.isFinite(atMs) || atMs < 0) throw new Error(`invalid time ${atMs}`);
  if (!Number.isInteger(step) || step <= 0) throw new Error(`invalid TOTP step ${step}`);
  return Math.floor(atMs / 1000 / step);
}

/** RFC 4226 HOTP: HMAC over the 8-byte big-endian counter, then dynamic truncation. */
function hotp(key: Buffer, counter: number, digits: number): string {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac('sha1', key).update(msg).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

function decodeKey(secretBase32: string): Buffer {
  const key = base32Decode(secretBase32);
  // An empty key would make every code predictable; that is a bug upstream, not a user error.
  if (key.length === 0) throw new Error('TOTP secret is empty');
  return key;
}

/**
 * Code for the step containing `atMs`. `digits` goes up to 8 only so the RFC
 * 6238 Appendix B vectors can be checked; verification stays at 6.
 */
export function totpCode(secretBase32: string, atMs: number, step = 30, digits = 6): string {
  if (!Number.isInteger(digits) || digits < 6 || digits > 8) throw new Error(`invalid TOTP digits ${digits}`);
  return hotp(decodeKey(secretBase32), counterAt(atMs, step), digits);
}

export interface VerifyTotpOptions {
  /** Steps of clock drift tolerated either side of now (default 1, i.e. ±30 s). */
  window?: number;
  step?: number;
  /** Last step that was accepted for this secret; it and earlier steps are replays. */
  lastUsedStep?: number;
}

export type VerifyTotpResult = { ok: true; step: number } | { ok: false };

const SIX_DIGITS = /^[0-9]{6}$/;

/**
 * Checks `code` against every step in the window without short-circuiting, so
 * timing does not reveal which step (if any) matched. On success the caller
 * must persist the returned step as the next `lastUsedStep`, otherwise a code
 * observed over a shoulder stays valid for the rest of the window.
 */
export function verifyTotp(
  secretBase32: string,
  code: string,
  atMs: number,
  opts: VerifyTotpOptions = {},
): VerifyTotpResult {
  const window = opts.window ?? 1;
  const step = opts.step ?? 30;
  if (!Number.isInteger(window) || window < 0) throw new Error(`invalid TOTP window ${window}`);
  const key = decodeKey(secretBase32);
  const now = counterAt(atMs, step);
  if (!SIX_DIGITS.test(code)) return { ok: false };

  const given = Buffer.from(code, 'utf8');
  let matched: number | undefined;
  for (let counter = now - window; counter <= now + window; counter++) {
    if (counter < 0) continue;
    const expected = Buffer.from(hotp(key, counter, 6), 'utf8');
    const equal = timingSafeEqual(given, expected);
    const fresh = opts.lastUsedStep === undefined || counter > opts.lastUsedStep;
    if (equal && fresh && matched === undefined) matched = counter;
  }
  return matched === undefined ? { ok: false } : { ok: true, step: matched };
}

/**
 * Key URI for the enrolment QR code (Google Authenticator key-uri format).
 * Label and parameters use percent-encoding (space as %20, not `+`, which
 * some apps would show literally); the issuer is repeated as a parameter
 * because newer apps prefer it over the label prefix.
 */
export function otpauthUri(secretBase32: string, account: string, issuer = 'Relaygrid'): string {
  const label = `${encodeURIComponent(issuer)}:${encodeURIComponent(account)}`;
  const params = [
    ['secret', secretBase32.replace(/[\s=]/g, '').toUpperCase()],
    ['issuer', issuer],
    ['algorithm', 'SHA1'],
    ['digits', '6'],
    ['period', '30'],
  ]
    .map(([k, v]) => `${k}=${encodeURIComponent(v!)}`)
    .join('&');
  return `otpauth://totp/${label}?${params}`;
}
