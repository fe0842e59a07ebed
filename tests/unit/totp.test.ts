import { describe, it, expect } from 'vitest';
import {
  base32Decode,
  base32Encode,
  generateTotpSecret,
  otpauthUri,
  totpCode,
  verifyTotp,
} from '../../producers/identity/totp.js';
import {
  generateRecoveryCodes,
  hashRecoveryCode,
  matchRecoveryCode,
} from '../../producers/identity/recovery-codes.js';

/** RFC 6238 Appendix B SHA-1 seed, ASCII "12345678901234567890". */
const RFC_SECRET = base32Encode(Buffer.from('12345678901234567890', 'ascii'));

describe('base32 (RFC 4648)', () => {
  it('matches the RFC 4648 section 10 vectors, without padding', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'MY'],
      ['fo', 'MZXQ'],
      ['foo', 'MZXW6'],
      ['foob', 'MZXW6YQ'],
      ['fooba', 'MZXW6YTB'],
      ['foobar', 'MZXW6YTBOI'],
    ];
    for (const [plain, encoded] of vectors) {
      expect(base32Encode(Buffer.from(plain, 'ascii'))).toBe(encoded);
      expect(base32Decode(encoded).toString('ascii')).toBe(plain);
    }
  });

  it('decodes case-insensitively, ignoring spaces and padding', () => {
    expect(base32Decode('mzxw 6ytb oi======').toString('ascii')).toBe('foobar');
  });

  it('round-trips arbitrary bytes', () => {
    for (let len = 0; len < 40; len++) {
      const buf = Buffer.from(Array.from({ length: len }, (_, i) => (i * 37 + len) & 0xff));
      expect(base32Decode(base32Encode(buf)).equals(buf)).toBe(true);
    }
  });

  it('rejects characters outside the alphabet, naming them', () => {
    expect(() => base32Decode('MZXW1')).toThrow(/"1"/);
    expect(() => base32Decode('MZ!W')).toThrow(Error);
  });

  it('generates 20-byte secrets as 32 unpadded characters', () => {
    const secret = generateTotpSecret();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(base32Decode(secret)).toHaveLength(20);
    expect(generateTotpSecret()).not.toBe(secret);
  });
});

describe('TOTP (RFC 6238)', () => {
  it('matches the Appendix B SHA-1 test vectors', () => {
    const vectors: [number, string][] = [
      [59, '94287082'],
      [1111111109, '07081804'],
      [1111111111, '14050471'],
      [1234567890, '89005924'],
      [2000000000, '69279037'],
      [20000000000, '65353130'],
    ];
    expect(RFC_SECRET).toBe('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
    for (const [seconds, code] of vectors) {
      expect(totpCode(RFC_SECRET, seconds * 1000, 30, 8)).toBe(code);
    }
  });

  it('defaults to 6 zero-padded digits (the last 6 of the 8-digit value)', () => {
    expect(totpCode(RFC_SECRET, 1111111109_000)).toBe('081804');
    expect(totpCode(RFC_SECRET, 59_000)).toBe('287082');
  });

  const now = 1_700_000_000_000;
  const secret = generateTotpSecret();
  const stepNow = Math.floor(now / 30_000);

  it('accepts the current code and reports its step', () => {
    expect(verifyTotp(secret, totpCode(secret, now), now)).toEqual({ ok: true, step: stepNow });
  });

  it('accepts codes within ±window steps and rejects those outside', () => {
    const prev = totpCode(secret, now - 30_000);
    const next = totpCode(secret, now + 30_000);
    const old = totpCode(secret, now - 60_000);
    expect(verifyTotp(secret, prev, now)).toEqual({ ok: true, step: stepNow - 1 });
    expect(verifyTotp(secret, next, now)).toEqual({ ok: true, step: stepNow + 1 });
    expect(verifyTotp(secret, old, now).ok).toBe(false);
    expect(verifyTotp(secret, old, now, { window: 2 })).toEqual({ ok: true, step: stepNow - 2 });
    expect(verifyTotp(secret, prev, now, { window: 0 }).ok).toBe(false);
  });

  it('rejects a replayed step via lastUsedStep', () => {
    const code = totpCode(secret, now);
    const first = verifyTotp(secret, code, now);
    expect(first.ok).toBe(true);
    const lastUsedStep = first.ok ? first.step : -1;
    expect(verifyTotp(secret, code, now + 5_000, { lastUsedStep })).toEqual({ ok: false });
    // An earlier step within the window is also a replay once a later one was used.
    expect(verifyTotp(secret, totpCode(secret, now - 30_000), now, { lastUsedStep }).ok).toBe(false);
    // The next step's code is still fine.
    expect(verifyTotp(secret, totpCode(secret, now + 30_000), now + 30_000, { lastUsedStep })).toEqual({
      ok: true,
      step: stepNow + 1,
    });
  });

  it('rejects malformed codes', () => {
    const code = totpCode(secret, now);
    for (const bad of ['', '12345', '1234567', `${code} `, ` ${code}`, '12a456', '１２３４５６', `${code}\n`, '-12345']) {
      expect(verifyTotp(secret, bad, now)).toEqual({ ok: false });
    }
    expect(verifyTotp(secret, totpCode(secret, now, 30, 8), now).ok).toBe(false);
  });

  it('builds an otpauth URI with encoded label and parameters', () => {
    const uri = otpauthUri('JBSWY3DPEHPK3PXP', 'alice@example.com');
    expect(uri).toBe(
      'otpauth://totp/Relaygrid:alice%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=Relaygrid&algorithm=SHA1&digits=6&period=30',
    );
    const odd = otpauthUri('JBSWY3DPEHPK3PXP', 'bob smith:1', 'Acme & Co');
    expect(odd.startsWith('otpauth://totp/Acme%20%26%20Co:bob%20smith%3A1?')).toBe(true);
    const url = new URL(odd);
    expect(url.searchParams.get('issuer')).toBe('Acme & Co');
    expect(url.searchParams.get('secret')).toBe('JBSWY3DPEHPK3PXP');
  });
});

describe('recovery codes', () => {
  it('generates lowercase xxxxx-xxxxx codes from an unambiguous alphabet', () => {
    const codes = generateRecoveryCodes();
    expect(codes).toHaveLength(10);
    for (const code of codes) {
      expect(code).toMatch(/^[a-z2-9]{5}-[a-z2-9]{5}$/);
      expect(code).not.toMatch(/[01oli]/);
    }
    expect(generateRecoveryCodes(3)).toHaveLength(3);
  });

  it('generates distinct codes', () => {
    const codes = generateRecoveryCodes(100);
    expect(new Set(codes).size).toBe(100);
  });

  it('matches ignoring case, dashes and spaces', () => {
    const codes = generateRecoveryCodes(5);
    const hashes = codes.map(hashRecoveryCode);
    expect(hashes[0]).toMatch(/^[0-9a-f]{64}$/);
    const target = codes[3]!;
    expect(matchRecoveryCode(target, hashes)).toBe(3);
    expect(matchRecoveryCode(target.toUpperCase(), hashes)).toBe(3);
    expect(matchRecoveryCode(target.replace('-', ''), hashes)).toBe(3);
    expect(matchRecoveryCode(` ${target.slice(0, 5)} ${target.slice(6)} `, hashes)).toBe(3);
  });

  it('returns -1 when nothing matches', () => {
    const hashes = generateRecoveryCodes(5).map(hashRecoveryCode);
    expect(matchRecoveryCode('aaaaa-aaaaa', hashes)).toBe(-1);
    expect(matchRecoveryCode('', hashes)).toBe(-1);
    expect(matchRecoveryCode('abcde-fghjk', [])).toBe(-1);
    expect(matchRecoveryCode('abcde-fghjk', ['not-a-hash', ''])).toBe(-1);
  });
});
