/** Sealing and tokens: the pure pieces of crypto-shredding and authentication. */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { deriveKey, open, seal, SealError } from '../../producers/identity/crypto/sealing.js';
import { EmailIndex } from '../../producers/identity/email.js';
import { AccessTokens, InvalidTokenError } from '../../producers/identity/tokens/access-tokens.js';

describe('sealing', () => {
  const key = randomBytes(32);
  it('opens what it sealed, for the same person only', () => {
    const sealed = seal(key, 'u1', 'alice@example.org');
    expect(sealed.toString('latin1')).not.toContain('alice');
    expect(open(key, 'u1', sealed).toString()).toBe('alice@example.org');
    expect(() => open(key, 'u2', sealed)).toThrow(SealError);
    expect(() => open(randomBytes(32), 'u1', sealed)).toThrow(SealError);
  });
  it('refuses altered bytes and unknown formats', () => {
    const sealed = seal(key, 'u1', 'x');
    const altered = Buffer.from(sealed);
    altered[altered.length - 1]! ^= 1;
    expect(() => open(key, 'u1', altered)).toThrow(SealError);
    expect(() => open(key, 'u1', Buffer.from([2, ...sealed.subarray(1)]))).toThrow(/format/);
  });
  it('derives distinct subkeys per purpose', () => {
    const master = randomBytes(32);
    expect(deriveKey(master, 'a').equals(deriveKey(master, 'b'))).toBe(false);
    expect(deriveKey(master, 'a').equals(deriveKey(master, 'a'))).toBe(true);
  });
});

describe('email index', () => {
  it('is keyed: the same address maps alike under one key, differently under another', () => {
    const index = new EmailIndex(randomBytes(32));
    expect(index.of(' Alice@Example.org ')).toBe(index.of('alice@example.org'));
    expect(new EmailIndex(randomBytes(32)).of('alice@example.org')).not.toBe(index.of('alice@example.org'));
  });
});

describe('access tokens', () => {
  const master = randomBytes(32);
  it('verify what they issued and carry user, session, roles and a millisecond issue time', () => {
    const tokens = new AccessTokens(master, 300);
    const claims = tokens.verify(tokens.issue('u1', 's1', ['client'], 1_700_000_000_123));
    expect(claims).toMatchObject({ sub: 'u1', sid: 's1', roles: ['client'], ims: 1_700_000_000_123 });
    expect(claims.exp! - claims.iat!).toBe(300);
  });
  it('a cached token stops verifying when it expires', async () => {
    const tokens = new AccessTokens(master, 1);
    const token = tokens.issue('u1', 's1', ['client']);
    expect(tokens.verify(token).sub).toBe('u1');
    await new Promise((r) => setTimeout(r, 1100));
    expect(() => tokens.verify(token)).toThrow(expect.objectContaining({ code: 'token_expired' }) as Error);
  });

  it('reject tokens signed with another key, altered, or expired', () => {
    const tokens = new AccessTokens(master, 300);
    const foreign = new AccessTokens(randomBytes(32), 300).issue('u1', 's1', ['admin']);
    expect(() => tokens.verify(foreign)).toThrow(InvalidTokenError);
    const [h, p, s] = tokens.issue('u1', 's1', ['client']).split('.');
    const escalated = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), roles: ['admin'] })).toString('base64url');
    expect(() => tokens.verify(`${h}.${escalated}.${s}`)).toThrow(InvalidTokenError);
  });
});
