/** Site input validation (producers/edge/site-validation.ts): every rule, a good value and a bad one, and the field each refusal names. */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../producers/decider.js';
import { canonicalCidr } from '../../producers/edge/cidr.js';
import { validateSite } from '../../producers/edge/site-validation.js';

const minimal = {
  domain: 'shop.example.com',
  upstreams: [{ host: '10.0.0.5', port: 8080 }],
  tls: { mode: 'acme' },
  waf: { level: '1' },
  cache: { enabled: true, ttlSeconds: 60 },
  nodeLabels: ['eu'],
};

/** The minimal site with one field replaced (undefined removes it). */
function site(patch: Record<string, unknown>): Record<string, unknown> {
  const next: Record<string, unknown> = { ...minimal, ...patch };
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete next[k];
  return next;
}

/** The field an invalid site is refused for (and that it is `invalid_site`). */
function refusedField(input: unknown): string {
  try {
    validateSite(input);
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).code).toBe('invalid_site');
    expect((err as DomainError).message.startsWith(`${String((err as DomainError).details['field'])}: `)).toBe(true);
    return String((err as DomainError).details['field']);
  }
  throw new Error(`accepted: ${JSON.stringify(input)}`);
}

describe('site validation', () => {
  it('accepts a minimal site and fills the defaults', () => {
    expect(validateSite(minimal)).toEqual({
      domain: 'shop.example.com',
      aliases: [],
      upstreams: [{ host: '10.0.0.5', port: 8080, weight: 1 }],
      tls: { mode: 'acme' },
      waf: { level: '1' },
      cache: { enabled: true, ttlSeconds: 60, bypass: [] },
      access: { allow: [], deny: [], blockedCountries: [] },
      rateLimit: null,
      headers: {},
      nodeLabels: ['eu'],
    });
  });

  it('refuses what is not an object, unknown fields and missing required ones', () => {
    expect(refusedField([])).toBe('(body)');
    expect(refusedField(site({ extra: 1 }))).toBe('extra');
    expect(refusedField(site({ tls: { mode: 'acme', cert: 'x' } }))).toBe('tls.cert');
    for (const field of ['domain', 'upstreams', 'nodeLabels']) expect(refusedField(site({ [field]: undefined }))).toBe(field);
    expect(refusedField(site({ tls: undefined }))).toBe('tls');
    expect(refusedField(site({ cache: undefined }))).toBe('cache');
  });

  describe('hostnames', () => {
    it('lower-cases, converts IDN to punycode and allows a leading wildcard', () => {
      expect(validateSite(site({ domain: 'Shop.Example.COM' })).domain).toBe('shop.example.com');
      expect(validateSite(site({ domain: 'bücher.example' })).domain).toBe('xn--bcher-kva.example');
      expect(validateSite(site({ domain: 'xn--bcher-kva.example' })).domain).toBe('xn--bcher-kva.example');
      expect(validateSite(site({ domain: '*.example.com' })).domain).toBe('*.example.com');
      expect(validateSite(site({ domain: `${'a'.repeat(63)}.example` })).domain).toHaveLength(71);
    });

    it('refuses names outside the grammar', () => {
      const bad = [
        'localhost', // one label
        '-shop.example.com',
        'shop-.example.com',
        'sh_op.example.com',
        'shop..example.com',
        'example.com.',
        `${'a'.repeat(64)}.example`,
        `${'a.'.repeat(126)}example`, // 259 characters
        'shop.*.example.com',
        '*example.com',
        '*.com', // a wildcard over a single label
        '1.2.3.4',
        '0x7f.1', // becomes 127.0.0.1 under URL host parsing
        'a%41.example.com', // would be percent-decoded
        'shop example.com',
        '',
        42,
      ];
      for (const domain of bad) expect(refusedField(site({ domain })), JSON.stringify(domain)).toBe('domain');
    });

    it('checks aliases like the domain, without repeats or the domain itself', () => {
      expect(validateSite(site({ aliases: ['www.shop.example.com', 'bücher.example'] })).aliases).toEqual(['www.shop.example.com', 'xn--bcher-kva.example']);
      expect(refusedField(site({ aliases: ['ok.example.com', 'bad_name.example.com'] }))).toBe('aliases[1]');
      expect(refusedField(site({ aliases: ['SHOP.example.com'] }))).toBe('aliases[0]');
      expect(refusedField(site({ aliases: ['a.example.com', 'A.example.com'] }))).toBe('aliases[1]');
      expect(refusedField(site({ aliases: Array.from({ length: 33 }, (_, i) => `a${i}.example.com`) }))).toBe('aliases');
    });
  });

  describe('upstreams', () => {
    it('takes hostnames (one label too) and IP literals, with weight 1-100 defaulting to 1', () => {
      const { upstreams } = validateSite(
        site({
          upstreams: [
            { host: 'Backend', port: 80 },
            { host: 'api.internal.example', port: 443, weight: 100 },
            { host: '[2001:DB8::1]', port: 8080, weight: 5 },
            { host: '2001:db8:0:0:0:0:0:2', port: 1 },
            { host: '192.0.2.1', port: 65535 },
          ],
        }),
      );
      expect(upstreams).toEqual([
        { host: 'backend', port: 80, weight: 1 },
        { host: 'api.internal.example', port: 443, weight: 100 },
        { host: '2001:db8::1', port: 8080, weight: 5 },
        { host: '2001:db8::2', port: 1, weight: 1 },
        { host: '192.0.2.1', port: 65535, weight: 1 },
      ]);
    });

    it('refuses bad hosts, ports, weights, counts and repeats', () => {
      const one = (u: Record<string, unknown>) => refusedField(site({ upstreams: [u] }));
      expect(one({ host: 'bad host', port: 80 })).toBe('upstreams[0].host');
      expect(one({ host: 'fe80::1%eth0', port: 80 })).toBe('upstreams[0].host');
      expect(one({ host: '[not-an-ip]', port: 80 })).toBe('upstreams[0].host');
      expect(one({ host: 'a.example', port: 0 })).toBe('upstreams[0].port');
      expect(one({ host: 'a.example', port: 65536 })).toBe('upstreams[0].port');
      expect(one({ host: 'a.example', port: '80' })).toBe('upstreams[0].port');
      expect(one({ host: 'a.example', port: 80, weight: 0 })).toBe('upstreams[0].weight');
      expect(one({ host: 'a.example', port: 80, weight: 101 })).toBe('upstreams[0].weight');
      expect(one({ host: 'a.example', port: 80, weight: 1.5 })).toBe('upstreams[0].weight');
      expect(one({ host: 'a.example', port: 80, max_fails: 3 })).toBe('upstreams[0].max_fails');
      expect(refusedField(site({ upstreams: [] }))).toBe('upstreams');
      expect(refusedField(site({ upstreams: Array.from({ length: 33 }, (_, i) => ({ host: '10.0.0.1', port: i + 1 })) }))).toBe('upstreams');
      expect(refusedField(site({ upstreams: [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.1', port: 80, weight: 2 }] }))).toBe('upstreams[1]');
    });
  });

  it('tls.mode is one of TLS_MODES', () => {
    for (const mode of ['acme', 'self-signed', 'custom', 'off']) expect(validateSite(site({ tls: { mode } })).tls.mode).toBe(mode);
    expect(refusedField(site({ tls: { mode: 'letsencrypt' } }))).toBe('tls.mode');
    expect(refusedField(site({ tls: {} }))).toBe('tls.mode');
  });

  it('waf.level is one of WAF_LEVELS (paranoia levels also as numbers)', () => {
    for (const level of ['off', 'detect', '1', '2', '3', '4']) expect(validateSite(site({ waf: { level } })).waf.level).toBe(level);
    expect(validateSite(site({ waf: { level: 3 } })).waf.level).toBe('3');
    for (const level of ['5', 0, 'on', 2.5]) expect(refusedField(site({ waf: { level } }))).toBe('waf.level');
  });

  it('cache: ttlSeconds 1-31536000, bypass paths starting with / of visible ASCII, at most 32', () => {
    expect(validateSite(site({ cache: { enabled: false, ttlSeconds: 31_536_000, bypass: ['/api/', '/admin?x=1'] } })).cache).toEqual({ enabled: false, ttlSeconds: 31_536_000, bypass: ['/api/', '/admin?x=1'] });
    expect(refusedField(site({ cache: { enabled: 'yes', ttlSeconds: 60 } }))).toBe('cache.enabled');
    expect(refusedField(site({ cache: { enabled: true, ttlSeconds: 0 } }))).toBe('cache.ttlSeconds');
    expect(refusedField(site({ cache: { enabled: true, ttlSeconds: 31_536_001 } }))).toBe('cache.ttlSeconds');
    expect(refusedField(site({ cache: { enabled: true, ttlSeconds: 60, bypass: ['api/'] } }))).toBe('cache.bypass[0]');
    expect(refusedField(site({ cache: { enabled: true, ttlSeconds: 60, bypass: ['/ok', '/a b'] } }))).toBe('cache.bypass[1]');
    expect(refusedField(site({ cache: { enabled: true, ttlSeconds: 60, bypass: ['/a\nb'] } }))).toBe('cache.bypass[0]');
    expect(refusedField(site({ cache: { enabled: true, ttlSeconds: 60, bypass: ['/é'] } }))).toBe('cache.bypass[0]');
    expect(refusedField(site({ cache: { enabled: true, ttlSeconds: 60, bypass: Array.from({ length: 33 }, (_, i) => `/p${i}`) } }))).toBe('cache.bypass');
  });

  describe('access', () => {
    it('normalises CIDRs (IPv4 and IPv6) and takes upper-case ISO 3166-1 alpha-2 codes', () => {
      const { access } = validateSite(site({ access: { allow: ['10.1.2.3/8', '2001:DB8::/32', '192.0.2.7'], deny: ['::1'], blockedCountries: ['DE', 'CN'] } }));
      expect(access).toEqual({ allow: ['10.0.0.0/8', '2001:db8::/32', '192.0.2.7/32'], deny: ['::1/128'], blockedCountries: ['DE', 'CN'] });
    });

    it('refuses bad CIDRs, more than 256, repeats by meaning, and bad country codes', () => {
      for (const cidr of ['10.0.0.0/33', '10.0.0', '::/129', '10.0.0.0/08', 'example.com', '10.0.0.0/8/1', 'fe80::1%eth0']) expect(refusedField(site({ access: { allow: [cidr] } })), cidr).toBe('access.allow[0]');
      expect(refusedField(site({ access: { deny: ['10.0.0.0/8', '10.9.9.9/8'] } }))).toBe('access.deny[1]');
      expect(refusedField(site({ access: { deny: Array.from({ length: 257 }, (_, i) => `10.0.${i >> 8}.${i & 255}`) } }))).toBe('access.deny');
      for (const code of ['de', 'DEU', 'ZZ', 'AA', 'D1']) expect(refusedField(site({ access: { blockedCountries: [code] } })), code).toBe('access.blockedCountries[0]');
      expect(refusedField(site({ access: { geo: [] } }))).toBe('access.geo');
    });

    it('canonicalCidr clears host bits and always writes the prefix', () => {
      expect(canonicalCidr('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1/128');
      expect(canonicalCidr('2001:db8:ffff::/33')).toBe('2001:db8:8000::/33');
      expect(canonicalCidr('0.0.0.0/0')).toBe('0.0.0.0/0');
      expect(canonicalCidr('a::b::c')).toBeNull();
    });
  });

  it('rateLimit: requestsPerSecond 1-100000, burst 0-100000, or none', () => {
    expect(validateSite(site({ rateLimit: { requestsPerSecond: 100_000, burst: 0 } })).rateLimit).toEqual({ requestsPerSecond: 100_000, burst: 0 });
    expect(validateSite(site({ rateLimit: null })).rateLimit).toBeNull();
    expect(refusedField(site({ rateLimit: { requestsPerSecond: 0, burst: 1 } }))).toBe('rateLimit.requestsPerSecond');
    expect(refusedField(site({ rateLimit: { requestsPerSecond: 100_001, burst: 1 } }))).toBe('rateLimit.requestsPerSecond');
    expect(refusedField(site({ rateLimit: { requestsPerSecond: 10, burst: -1 } }))).toBe('rateLimit.burst');
    expect(refusedField(site({ rateLimit: { requestsPerSecond: 10, burst: 100_001 } }))).toBe('rateLimit.burst');
    expect(refusedField(site({ rateLimit: { requestsPerSecond: 10 } }))).toBe('rateLimit.burst');
  });

  describe('headers', () => {
    it('takes RFC 9110 token names and visible ASCII values with inner spaces and tabs', () => {
      const headers = { 'Strict-Transport-Security': 'max-age=63072000; includeSubDomains', 'X-Frame-Options': 'DENY', 'X-Note': 'a\tb $host "quoted"' };
      expect(validateSite(site({ headers })).headers).toEqual(headers);
    });

    it('refuses a value with CR or LF, controls, non-ASCII and edge whitespace', () => {
      for (const value of ['ok\r\nSet-Cookie: a=b', 'line\nbreak', 'cr\rhere', 'nul\u0000', 'del\u007f', 'é', ' lead', 'trail ', '', 42]) {
        expect(refusedField(site({ headers: { 'X-Test': value } })), JSON.stringify(value)).toBe('headers.X-Test');
      }
    });

    it('refuses names outside the token grammar, hop-by-hop and credential names, repeats and more than 32', () => {
      for (const name of ['Bad Name', 'X:Colon', 'Ünicode', '', 'X\r\nY']) expect(refusedField(site({ headers: { [name]: 'v' } })), JSON.stringify(name)).toBe('headers');
      for (const name of ['Host', 'content-length', 'Transfer-Encoding', 'Connection', 'Set-Cookie', 'Keep-Alive', 'Upgrade']) {
        expect(refusedField(site({ headers: { [name]: 'v' } })), name).toBe(`headers.${name}`);
      }
      expect(refusedField(site({ headers: { 'X-A': '1', 'x-a': '2' } }))).toBe('headers.x-a');
      expect(refusedField(site({ headers: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`X-H${i}`, 'v'])) }))).toBe('headers');
      expect(refusedField(site({ headers: ['X-A', '1'] }))).toBe('headers');
    });
  });

  it('nodeLabels are fleet labels, sorted and unique', () => {
    expect(validateSite(site({ nodeLabels: ['eu', 'edge', 'eu'] })).nodeLabels).toEqual(['edge', 'eu']);
    expect(validateSite(site({ nodeLabels: [] })).nodeLabels).toEqual([]);
    for (const label of ['EU', '-eu', 'e u', 'a'.repeat(65), '']) expect(refusedField(site({ nodeLabels: [label] })), label).toBe('nodeLabels[0]');
    expect(refusedField(site({ nodeLabels: Array.from({ length: 33 }, (_, i) => `l${i}`) }))).toBe('nodeLabels');
  });
});
