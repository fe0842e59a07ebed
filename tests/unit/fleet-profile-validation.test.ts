/** Profile input validation and REALITY key material. */
import { createPublicKey, diffieHellman, generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../producers/decider.js';
import { validateProfileInput } from '../../producers/fleet/profile-validation.js';
import { generateRealityKeys, generateShortIds } from '../../producers/fleet/reality-keys.js';

// PKCS#8 wrapping of a raw X25519 private key (RFC 8410): this prefix, then the 32 bytes.
const PKCS8_X25519_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/**
 * The public key of a raw private key. Node's JWK import wants `x` alongside
 * `d`, so the raw key goes through PKCS#8 instead; used to check an imported
 * private key against its public key: the test's oracle, computed another way than the generator does.
 */
function realityPublicKey(privateKey: string): string {
  const raw = Buffer.from(privateKey, 'base64url');
  if (!/^[A-Za-z0-9_-]{43}$/.test(privateKey) || raw.length !== 32) throw new RangeError('a REALITY private key is 32 bytes in base64url (43 characters)');
  const key = createPrivateKey({ key: Buffer.concat([PKCS8_X25519_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  const x = createPublicKey(key).export({ format: 'jwk' }).x;
  if (!x) throw new Error('X25519 JWK export lacks x');
  return x;
}


const reality = {
  kind: 'vless-reality',
  port: 443,
  labels: ['eu', 'fast'],
  settings: { dest: 'www.example.com:443', serverNames: ['www.example.com'], shortIds: ['0123456789abcdef', ''], fingerprint: 'chrome', flow: 'xtls-rprx-vision' },
};
const tls = {
  kind: 'trojan-tls',
  port: 8443,
  settings: { certificateFile: '/etc/relaygrid/tls.crt', keyFile: '/etc/relaygrid/tls.key', serverNames: ['proxy.example.org'] },
};

/** The DomainError thrown for `input`: its code must be invalid_profile and its message must start with `field`. */
function refusal(input: unknown): DomainError {
  try {
    validateProfileInput(input);
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe('invalid_profile');
    return err as DomainError;
  }
  throw new Error(`accepted ${JSON.stringify(input)}`);
}

const withSettings = (base: { settings: object }, settings: object) => ({ ...base, settings: { ...base.settings, ...settings } });

describe('validateProfileInput', () => {
  it('accepts and normalizes valid input', () => {
    expect(validateProfileInput(reality)).toEqual({
      kind: 'vless-reality',
      port: 443,
      labels: ['eu', 'fast'],
      settings: reality.settings,
    });
    expect(validateProfileInput({ ...tls, labels: ['b', 'a', 'b'] })).toEqual({ ...tls, labels: ['a', 'b'] });
    expect(validateProfileInput({ kind: 'socks', port: 1080 })).toEqual({ kind: 'socks', port: 1080, labels: [], settings: {} });
    // '' means no flow; upper-case short ids and names are lower-cased.
    expect(validateProfileInput(withSettings(reality, { flow: '', shortIds: ['ABCD'], serverNames: ['WWW.Example.com'] })).settings).toEqual({
      dest: 'www.example.com:443',
      serverNames: ['www.example.com'],
      shortIds: ['abcd'],
      fingerprint: 'chrome',
    });
    expect(validateProfileInput(withSettings(reality, { dest: '[2001:db8::1]:8443' })).settings.dest).toBe('[2001:db8::1]:8443');
    expect(validateProfileInput(withSettings(reality, { dest: '93.184.216.34:443' })).settings.dest).toBe('93.184.216.34:443');
  });

  it.each([
    ['kind', { ...reality, kind: 'vmess' }],
    ['port', { ...reality, port: 0 }],
    ['port', { ...reality, port: 65_536 }],
    ['port', { ...reality, port: 443.5 }],
    ['port', { ...reality, port: '443' }],
    ['labels', { ...reality, labels: 'eu' }],
    ['labels[1]', { ...reality, labels: ['eu', 'EU'] }],
    ['labels[0]', { ...reality, labels: ['x'.repeat(65)] }],
    ['labels[0]', { ...reality, labels: ['a b'] }],
    ['settings', { ...reality, settings: [] }],
    ['settings.dest', withSettings(reality, { dest: undefined })],
    ['settings.dest', withSettings(reality, { dest: 'www.example.com' })],
    ['settings.dest', withSettings(reality, { dest: 'www.example.com:0' })],
    ['settings.dest', withSettings(reality, { dest: 'www.example.com:70000' })],
    ['settings.dest', withSettings(reality, { dest: '2001:db8::1:443' })],
    ['settings.serverNames', withSettings(reality, { serverNames: undefined })],
    ['settings.serverNames', withSettings(reality, { serverNames: [] })],
    ['settings.serverNames[0]', withSettings(reality, { serverNames: ['*.example.com'] })],
    ['settings.serverNames[1]', withSettings(reality, { serverNames: ['a.example.com', 'bad_name'] })],
    ['settings.fingerprint', withSettings(reality, { fingerprint: 'netscape' })],
    ['settings.flow', withSettings(reality, { flow: 'xtls-rprx-direct' })],
    ['settings.shortIds[0]', withSettings(reality, { shortIds: ['abc'] })],
    ['settings.shortIds[0]', withSettings(reality, { shortIds: ['zz'] })],
    ['settings.shortIds[1]', withSettings(reality, { shortIds: ['ab', '0123456789abcdef01'] })],
    ['settings.shortIds', withSettings(reality, { shortIds: ['ab', 'AB'] })],
    ['settings.publicKey', withSettings(reality, { publicKey: 'VxRjo7AUVTSmeM3jNsfcJnyNvPqLXxPlwlxj7nQUkUw' })],
    ['settings.certificateFile', withSettings(reality, { certificateFile: '/etc/x.crt' })],
    ['settings.certificateFile', withSettings(tls, { certificateFile: undefined })],
    ['settings.certificateFile', withSettings(tls, { certificateFile: 'tls.crt' })],
    ['settings.keyFile', withSettings(tls, { keyFile: '../tls.key' })],
    ['settings.serverNames[0]', withSettings(tls, { serverNames: ['not a host'] })],
    ['settings.dest', withSettings(tls, { dest: 'www.example.com:443' })],
    ['settings.flow', withSettings(tls, { flow: 'xtls-rprx-vision' })],
    ['settings.fingerprint', { kind: 'vless', port: 1, settings: { fingerprint: 'chrome' } }],
    ['profile', null],
  ])('refuses a bad %s', (field, input) => {
    const err = refusal(input);
    expect(err.message.startsWith(`${field}: `)).toBe(true);
    expect(err.details).toEqual({ field });
  });

  it('says what is wrong', () => {
    expect(refusal({ ...reality, port: 0 }).message).toBe('port: must be an integer 1-65535');
    expect(refusal({ ...reality, kind: 'vmess' }).message).toMatch(/^kind: must be one of vless-reality, vless-tls, vless, trojan-tls, http, socks$/);
  });
});

describe('REALITY keys', () => {
  it('are 32-byte X25519 keys in base64url without padding, as `xray x25519` prints them', () => {
    const { privateKey, publicKey } = generateRealityKeys();
    expect(privateKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(privateKey, 'base64url')).toHaveLength(32);
    expect(Buffer.from(publicKey, 'base64url')).toHaveLength(32);
    expect(generateRealityKeys().privateKey).not.toBe(privateKey);
  });

  it('the public key is the one derived from the private key', () => {
    const { privateKey, publicKey } = generateRealityKeys();
    const jwk = { kty: 'OKP', crv: 'X25519', d: privateKey, x: publicKey };
    expect(createPublicKey({ key: jwk, format: 'jwk' }).export({ format: 'jwk' }).x).toBe(publicKey);
    // Derived from the private key alone, and the pair agrees on a shared secret with a stranger.
    expect(realityPublicKey(privateKey)).toBe(publicKey);
    const stranger = generateKeyPairSync('x25519');
    const ours = createPrivateKey({ key: jwk, format: 'jwk' });
    const theirs = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: publicKey }, format: 'jwk' });
    expect(diffieHellman({ privateKey: ours, publicKey: stranger.publicKey }).equals(diffieHellman({ privateKey: stranger.privateKey, publicKey: theirs }))).toBe(true);
  });

  it('derives the public key of a known private key', () => {
    // RFC 7748 section 6.1: Alice's private and public keys.
    const alicePrivate = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64url');
    const alicePublic = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString('base64url');
    expect(realityPublicKey(alicePrivate)).toBe(alicePublic);
    expect(() => realityPublicKey('short')).toThrow(RangeError);
  });

  it('short ids: distinct even-length hex, the first 16 characters', () => {
    const ids = generateShortIds(8);
    expect(ids).toHaveLength(8);
    expect(new Set(ids).size).toBe(8);
    expect(ids[0]).toMatch(/^[0-9a-f]{16}$/);
    for (const id of ids) expect(id).toMatch(/^(?:[0-9a-f]{2}){1,8}$/);
    expect(validateProfileInput(withSettings(reality, { shortIds: ids })).settings.shortIds).toEqual(ids);
    expect(() => generateShortIds(0)).toThrow(RangeError);
  });
});
