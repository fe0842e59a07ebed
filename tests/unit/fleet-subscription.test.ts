/** Subscriptions: share links, base64 list, sing-box and Clash.Meta, and the usage header. */
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { InboundProfile, ProxyUser } from '../../producers/fleet/model.js';
import { generateRealityKeys } from '../../producers/fleet/reality-keys.js';
import { realityProfile as fixtureReality } from '../support/fleet-fixtures.js';
import { describeEndpoint, describeEndpoints, GROUP_NAME, type EndpointSource, type SubscriptionNode } from '../../producers/fleet/subscription/endpoint.js';
import {
  base64Subscription,
  base64SubscriptionOf,
  clashProfile,
  clashSubscription,
  singboxSubscription,
  subscriptionUserinfo,
} from '../../producers/fleet/subscription/formats.js';
import { shareLink, shareLinks, trojanLink, vlessLink } from '../../producers/fleet/subscription/share-links.js';

const keys = generateRealityKeys();

const user: ProxyUser = {
  userId: 'u-alice',
  vlessId: '0b3e7f44-1f0a-4d6e-8f7b-9a6c5d4e3f21',
  trojanPassword: 'p@ss word/#?&',
  proxyUsername: 'alice',
  proxyPassword: 'alice: secret',
};

const node: SubscriptionNode = { address: 'fra1.example.net', name: 'fra-1', city: 'Frankfurt' };
const node6: SubscriptionNode = { address: '2001:db8::10', name: 'ams-1', city: 'Amsterdam' };

// Full profiles, secrets included, to show that nothing secret reaches any output even when handed over by mistake.
const realityProfile = fixtureReality(keys, 'firefox');
const tlsProfile: InboundProfile = {
  profileId: 'p-vless-tls',
  kind: 'vless-tls',
  port: 8443,
  labels: [],
  settings: { certificateFile: '/etc/tls.crt', keyFile: '/etc/tls.key', serverNames: ['proxy.example.org'], flow: 'xtls-rprx-vision' },
  secrets: {},
};
const plainProfile: InboundProfile = { profileId: 'p-vless', kind: 'vless', port: 10000, labels: [], settings: {}, secrets: {} };
const trojanProfile: InboundProfile = {
  profileId: 'p-trojan',
  kind: 'trojan-tls',
  port: 9443,
  labels: [],
  settings: { certificateFile: '/etc/tls.crt', keyFile: '/etc/tls.key', serverNames: ['proxy.example.org'], fingerprint: 'chrome' },
  secrets: {},
};
const httpProfile: InboundProfile = { profileId: 'p-http', kind: 'http', port: 3128, labels: [], settings: {}, secrets: {} };
const socksProfile: InboundProfile = { profileId: 'p-socks', kind: 'socks', port: 1080, labels: [], settings: {}, secrets: {} };

const sources: EndpointSource[] = [realityProfile, tlsProfile, plainProfile, trojanProfile, httpProfile, socksProfile].map((profile) => ({ node, profile }));
const endpoints = describeEndpoints(sources, user);

describe('share links', () => {
  it('vless REALITY: every parameter a client needs, parsed back with URL', () => {
    const link = vlessLink(describeEndpoint(node, realityProfile, user));
    expect(link.startsWith(`vless://${user.vlessId}@fra1.example.net:443?encryption=none&security=reality&sni=www.example.com&fp=firefox&pbk=`)).toBe(true);
    const url = new URL(link);
    expect(url.protocol).toBe('vless:');
    expect(url.username).toBe(user.vlessId);
    expect(url.hostname).toBe('fra1.example.net');
    expect(url.port).toBe('443');
    expect(Object.fromEntries(url.searchParams)).toEqual({
      encryption: 'none',
      security: 'reality',
      sni: 'www.example.com',
      fp: 'firefox',
      pbk: keys.publicKey,
      sid: '0123456789abcdef',
      flow: 'xtls-rprx-vision',
      type: 'tcp',
    });
    expect(decodeURIComponent(url.hash.slice(1))).toBe('fra-1 (Frankfurt) vless-reality');
    expect(url.hash).toBe('#fra-1%20(Frankfurt)%20vless-reality');
  });

  it('vless REALITY without a fingerprint or short ids: fp=chrome, no sid', () => {
    const profile = { ...realityProfile, settings: { ...realityProfile.settings, fingerprint: undefined, shortIds: undefined } };
    const params = new URL(vlessLink(describeEndpoint(node, profile, user))).searchParams;
    expect(params.get('fp')).toBe('chrome');
    expect(params.has('sid')).toBe(false);
  });

  it('vless TLS and plain vless', () => {
    const tlsParams = Object.fromEntries(new URL(vlessLink(describeEndpoint(node, tlsProfile, user))).searchParams);
    expect(tlsParams).toEqual({ encryption: 'none', security: 'tls', sni: 'proxy.example.org', flow: 'xtls-rprx-vision', type: 'tcp' });
    const plain = vlessLink(describeEndpoint(node, plainProfile, user));
    expect(plain).toBe(`vless://${user.vlessId}@fra1.example.net:10000?encryption=none&security=none&type=tcp#fra-1%20(Frankfurt)%20vless`);
  });

  it('trojan: the password is escaped and comes back intact', () => {
    const link = trojanLink(describeEndpoint(node, trojanProfile, user));
    const url = new URL(link);
    expect(url.protocol).toBe('trojan:');
    expect(decodeURIComponent(url.username)).toBe(user.trojanPassword);
    expect(url.port).toBe('9443');
    expect(Object.fromEntries(url.searchParams)).toEqual({ security: 'tls', sni: 'proxy.example.org', fp: 'chrome', type: 'tcp' });
  });

  it('puts IPv6 literals in brackets, with or without brackets in the node address', () => {
    for (const address of [node6.address, `[${node6.address}]`]) {
      const url = new URL(vlessLink(describeEndpoint({ ...node6, address }, realityProfile, user)));
      expect(url.hostname).toBe('[2001:db8::10]');
      expect(url.port).toBe('443');
      expect(url.searchParams.get('pbk')).toBe(keys.publicKey);
    }
  });

  it('has no link for HTTP and SOCKS', () => {
    expect(shareLink(describeEndpoint(node, httpProfile, user))).toBeNull();
    expect(shareLink(describeEndpoint(node, socksProfile, user))).toBeNull();
    expect(shareLinks(endpoints).map((l) => l.split(':')[0])).toEqual(['vless', 'vless', 'vless', 'trojan']);
  });
});

describe('endpoints', () => {
  it('get unique names when two profiles would be named alike', () => {
    const twice = describeEndpoints(
      [
        { node, profile: plainProfile },
        { node, profile: { ...plainProfile, profileId: 'p-vless-2', port: 10001 } },
        { node, profile: { ...plainProfile, profileId: 'p-vless-3', port: 10002 } },
      ],
      user,
    );
    expect(twice.map((e) => e.name)).toEqual(['fra-1 (Frankfurt) vless', 'fra-1 (Frankfurt) vless 2', 'fra-1 (Frankfurt) vless 3']);
  });

  it('refuse a REALITY profile without the public key clients need', () => {
    expect(() => describeEndpoint(node, { ...realityProfile, settings: { ...realityProfile.settings, publicKey: undefined } }, user)).toThrow(/publicKey/);
  });
});

describe('base64 subscription', () => {
  it('decodes to the share links, one per line', () => {
    const links = shareLinks(endpoints);
    const body = base64Subscription(links);
    expect(body).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(body, 'base64').toString('utf8').split('\n')).toEqual(links);
    expect(base64SubscriptionOf(endpoints)).toBe(body);
  });
});

describe('sing-box subscription', () => {
  it('has a selector first, then one outbound per endpoint', () => {
    const { outbounds } = singboxSubscription(endpoints);
    const names = endpoints.map((e) => e.name);
    expect(outbounds[0]).toEqual({ type: 'selector', tag: GROUP_NAME, outbounds: names, default: names[0] });
    expect(outbounds.slice(1).map((o) => o.tag)).toEqual(names);
    expect(outbounds[1]).toEqual({
      type: 'vless',
      tag: 'fra-1 (Frankfurt) vless-reality',
      server: 'fra1.example.net',
      server_port: 443,
      uuid: user.vlessId,
      flow: 'xtls-rprx-vision',
      tls: {
        enabled: true,
        server_name: 'www.example.com',
        utls: { enabled: true, fingerprint: 'firefox' },
        reality: { enabled: true, public_key: keys.publicKey, short_id: '0123456789abcdef' },
      },
    });
    expect(outbounds[2]).toMatchObject({ type: 'vless', flow: 'xtls-rprx-vision', tls: { enabled: true, server_name: 'proxy.example.org' } });
    expect(outbounds[2]).not.toHaveProperty('tls.utls');
    expect(outbounds[3]).toEqual({ type: 'vless', tag: 'fra-1 (Frankfurt) vless', server: 'fra1.example.net', server_port: 10000, uuid: user.vlessId });
    expect(outbounds[4]).toEqual({
      type: 'trojan',
      tag: 'fra-1 (Frankfurt) trojan-tls',
      server: 'fra1.example.net',
      server_port: 9443,
      password: user.trojanPassword,
      tls: { enabled: true, server_name: 'proxy.example.org', utls: { enabled: true, fingerprint: 'chrome' } },
    });
    expect(outbounds[5]).toEqual({ type: 'http', tag: 'fra-1 (Frankfurt) http', server: 'fra1.example.net', server_port: 3128, username: 'alice', password: 'alice: secret' });
    expect(outbounds[6]).toEqual({ type: 'socks', tag: 'fra-1 (Frankfurt) socks', server: 'fra1.example.net', server_port: 1080, version: '5', username: 'alice', password: 'alice: secret' });
  });

  it('keeps IPv6 servers without brackets and has no selector when empty', () => {
    const [selector, first] = singboxSubscription([describeEndpoint(node6, realityProfile, user)]).outbounds;
    expect(selector?.type).toBe('selector');
    expect(first).toMatchObject({ server: '2001:db8::10' });
    expect(singboxSubscription([])).toEqual({ outbounds: [] });
  });
});

describe('Clash.Meta subscription', () => {
  it('parses into the expected proxies, group and rule', () => {
    const doc = parse(clashSubscription(endpoints)) as unknown;
    expect(doc).toEqual(clashProfile(endpoints));
    const names = endpoints.map((e) => e.name);
    expect(doc).toEqual({
      proxies: [
        {
          name: 'fra-1 (Frankfurt) vless-reality',
          type: 'vless',
          server: 'fra1.example.net',
          port: 443,
          uuid: user.vlessId,
          network: 'tcp',
          udp: true,
          tls: true,
          servername: 'www.example.com',
          flow: 'xtls-rprx-vision',
          'client-fingerprint': 'firefox',
          'reality-opts': { 'public-key': keys.publicKey, 'short-id': '0123456789abcdef' },
        },
        {
          name: 'fra-1 (Frankfurt) vless-tls',
          type: 'vless',
          server: 'fra1.example.net',
          port: 8443,
          uuid: user.vlessId,
          network: 'tcp',
          udp: true,
          tls: true,
          servername: 'proxy.example.org',
          flow: 'xtls-rprx-vision',
        },
        { name: 'fra-1 (Frankfurt) vless', type: 'vless', server: 'fra1.example.net', port: 10000, uuid: user.vlessId, network: 'tcp', udp: true, tls: false },
        {
          name: 'fra-1 (Frankfurt) trojan-tls',
          type: 'trojan',
          server: 'fra1.example.net',
          port: 9443,
          password: user.trojanPassword,
          udp: true,
          sni: 'proxy.example.org',
          'client-fingerprint': 'chrome',
        },
        { name: 'fra-1 (Frankfurt) http', type: 'http', server: 'fra1.example.net', port: 3128, username: 'alice', password: 'alice: secret' },
        { name: 'fra-1 (Frankfurt) socks', type: 'socks5', server: 'fra1.example.net', port: 1080, username: 'alice', password: 'alice: secret', udp: true },
      ],
      'proxy-groups': [{ name: GROUP_NAME, type: 'select', proxies: names }],
      rules: [`MATCH,${GROUP_NAME}`],
    });
  });

  it('keeps strings that a YAML 1.1 or 1.2 reader could take for numbers or booleans as strings', () => {
    const profile = { ...realityProfile, settings: { ...realityProfile.settings, shortIds: ['1234', '12'] } };
    const tricky = { ...user, trojanPassword: 'on', proxyPassword: '12:30' };
    const yaml = clashSubscription(describeEndpoints([{ node, profile }, { node, profile: trojanProfile }, { node, profile: httpProfile }], tricky));
    for (const version of ['1.1', '1.2'] as const) {
      const doc = parse(yaml, { version }) as { proxies: Record<string, unknown>[] };
      expect(doc.proxies[0]!['reality-opts']).toEqual({ 'public-key': keys.publicKey, 'short-id': '1234' });
      expect(doc.proxies[1]!.password).toBe('on');
      expect(doc.proxies[2]!.password).toBe('12:30');
    }
  });

  it('rejects rather than bypasses when there is nothing to offer', () => {
    expect(parse(clashSubscription([]))).toEqual({ proxies: [], 'proxy-groups': [{ name: GROUP_NAME, type: 'select', proxies: ['REJECT'] }], rules: [`MATCH,${GROUP_NAME}`] });
  });
});

describe('secrets', () => {
  it('no output carries the REALITY private key, even when full profiles are passed', () => {
    const outputs = [
      ...shareLinks(endpoints),
      base64SubscriptionOf(endpoints),
      Buffer.from(base64SubscriptionOf(endpoints), 'base64').toString('utf8'),
      JSON.stringify(singboxSubscription(endpoints)),
      clashSubscription(endpoints),
      JSON.stringify(endpoints),
    ];
    for (const output of outputs) expect(output).not.toContain(keys.privateKey);
    expect(JSON.stringify(endpoints)).toContain(keys.publicKey);
  });
});

describe('subscriptionUserinfo', () => {
  it('writes every key, bytes and unix seconds', () => {
    expect(subscriptionUserinfo({ upload: 1, download: 2, total: 3, expire: new Date('2030-01-01T00:00:00.900Z') })).toBe(
      'upload=1; download=2; total=3; expire=1893456000',
    );
    expect(subscriptionUserinfo({ upload: 0, download: 0, expire: 1_893_456_000 })).toBe('upload=0; download=0; total=0; expire=1893456000');
  });

  it('writes 0 for no limit and no end, and takes bigints beyond 2^53', () => {
    expect(subscriptionUserinfo({ upload: 10n ** 18n, download: 2n ** 60n, expire: null })).toBe(
      `upload=1000000000000000000; download=${2n ** 60n}; total=0; expire=0`,
    );
  });

  it('refuses negative or fractional counts', () => {
    expect(() => subscriptionUserinfo({ upload: -1, download: 0 })).toThrow(RangeError);
    expect(() => subscriptionUserinfo({ upload: 0, download: 1.5 })).toThrow(RangeError);
    expect(() => subscriptionUserinfo({ upload: 0, download: -1n })).toThrow(RangeError);
  });
});
