/** The core configuration renderer: deterministic output, hashes, and what the agent diffs. */
import { describe, expect, it } from 'vitest';
import type { InboundProfile, ProxyUser } from '../../producers/fleet/model.js';
import { realityProfile } from '../support/fleet-fixtures.js';
import type { CoreInbound } from '../../workers/fleet/render/core-config.js';
import { contentHash, inboundsSignature, renderConfig, renderTemplate, usersByInbound, RenderError } from '../../workers/fleet/render/render.js';

const PRIVATE_KEY = 'eMyxFeehQTO4i33hsuvPdZfscwSGduolEoe3prkAuko';

const profiles: InboundProfile[] = [
  realityProfile({ publicKey: 'VxRjo7AUVTSmeM3jNsfcJnyNvPqLXxPlwlxj7nQUkUw', privateKey: PRIVATE_KEY }),
  {
    profileId: 'p-trojan',
    kind: 'trojan-tls',
    port: 8443,
    labels: ['eu'],
    settings: { certificateFile: '/etc/relaygrid/tls.crt', keyFile: '/etc/relaygrid/tls.key', serverNames: ['proxy.example.org'] },
    secrets: {},
  },
  { profileId: 'p-http', kind: 'http', port: 3128, labels: [], settings: {}, secrets: {} },
  { profileId: 'p-socks', kind: 'socks', port: 1080, labels: [], settings: {}, secrets: {} },
  { profileId: 'p-vless', kind: 'vless', port: 10000, labels: [], settings: { flow: 'xtls-rprx-vision' }, secrets: {} },
];

const users: ProxyUser[] = [
  { userId: 'u-bob', vlessId: '6f1c2f0e-5a57-4a43-9b8e-2f3c1d0b7a11', trojanPassword: 'bob-trojan', proxyUsername: 'bob', proxyPassword: 'bob-pass' },
  { userId: 'u-alice', vlessId: '0b3e7f44-1f0a-4d6e-8f7b-9a6c5d4e3f21', trojanPassword: 'alice-trojan', proxyUsername: 'alice', proxyPassword: 'alice-pass' },
];

const render = (ps: InboundProfile[] = profiles, us: ProxyUser[] = users) => renderConfig(renderTemplate(ps), ps, us);
const inbound = (config: ReturnType<typeof render>, tag: string): CoreInbound => {
  const found = config.inbounds.find((i) => i.tag === tag);
  if (!found) throw new Error(`no inbound ${tag}`);
  return found;
};

describe('renderTemplate', () => {
  it('has one inbound per profile, tagged by profile id and sorted, with no users', () => {
    const template = renderTemplate(profiles);
    expect(template.inbounds.map((i) => [i.tag, i.protocol, i.port, i.listen])).toEqual([
      ['p-http', 'http', 3128, '0.0.0.0'],
      ['p-reality', 'vless', 443, '0.0.0.0'],
      ['p-socks', 'socks', 1080, '0.0.0.0'],
      ['p-trojan', 'trojan', 8443, '0.0.0.0'],
      ['p-vless', 'vless', 10000, '0.0.0.0'],
    ]);
    for (const i of template.inbounds) {
      expect('clients' in i.settings ? i.settings.clients : i.settings.accounts).toEqual([]);
    }
    expect(template.outbounds).toEqual([
      { tag: 'direct', protocol: 'freedom', settings: {} },
      { tag: 'block', protocol: 'blackhole', settings: {} },
    ]);
    expect(template.routing).toEqual({ domainStrategy: 'AsIs', rules: [] });
  });

  it("renders REALITY with Xray's server-side field names", () => {
    // XTLS/REALITY README and Xray-docs-next transports/reality.md: show, dest (alias target), xver, serverNames, privateKey, shortIds.
    expect(inbound(renderTemplate(profiles), 'p-reality')).toEqual({
      tag: 'p-reality',
      listen: '0.0.0.0',
      port: 443,
      protocol: 'vless',
      settings: { clients: [], decryption: 'none' },
      streamSettings: {
        network: 'tcp',
        security: 'reality',
        realitySettings: {
          show: false,
          dest: 'www.example.com:443',
          xver: 0,
          serverNames: ['www.example.com', 'example.com'],
          privateKey: PRIVATE_KEY,
          shortIds: ['0123456789abcdef', 'ab'],
        },
      },
    });
  });

  it('renders TLS with certificate files, HTTP without transparency and SOCKS with password auth', () => {
    const template = renderTemplate(profiles);
    expect(inbound(template, 'p-trojan').streamSettings).toEqual({
      network: 'tcp',
      security: 'tls',
      tlsSettings: { serverName: 'proxy.example.org', certificates: [{ certificateFile: '/etc/relaygrid/tls.crt', keyFile: '/etc/relaygrid/tls.key' }] },
    });
    expect(inbound(template, 'p-http').settings).toEqual({ accounts: [], allowTransparent: false });
    expect(inbound(template, 'p-socks').settings).toEqual({ auth: 'password', accounts: [], udp: true });
  });

  it('refuses a REALITY profile without its private key, and duplicate profiles', () => {
    const [reality] = profiles;
    expect(() => renderTemplate([{ ...reality!, secrets: {} }])).toThrow(RenderError);
    expect(() => renderTemplate([reality!, reality!])).toThrow(/listed twice/);
  });
});

describe('renderConfig', () => {
  it('puts every user on every inbound, sorted, with email = user id at level 0', () => {
    const config = render();
    const reality = inbound(config, 'p-reality');
    expect(reality.settings).toEqual({
      decryption: 'none',
      clients: [
        { id: users[1]!.vlessId, email: 'u-alice', level: 0, flow: 'xtls-rprx-vision' },
        { id: users[0]!.vlessId, email: 'u-bob', level: 0, flow: 'xtls-rprx-vision' },
      ],
    });
    // Plain VLESS gets no flow even if its settings carry one: Vision needs TLS or REALITY.
    const plain = inbound(config, 'p-vless');
    expect(plain.protocol === 'vless' && plain.settings.clients.map((c) => c.flow)).toEqual([undefined, undefined]);
    expect(inbound(config, 'p-trojan').settings).toEqual({
      clients: [
        { password: 'alice-trojan', email: 'u-alice', level: 0 },
        { password: 'bob-trojan', email: 'u-bob', level: 0 },
      ],
    });
    expect(inbound(config, 'p-http').settings).toEqual({
      allowTransparent: false,
      accounts: [
        { user: 'alice', pass: 'alice-pass' },
        { user: 'bob', pass: 'bob-pass' },
      ],
    });
  });

  it('does not modify the template', () => {
    const template = renderTemplate(profiles);
    const before = JSON.stringify(template);
    render();
    renderConfig(template, profiles, users);
    expect(JSON.stringify(template)).toBe(before);
  });

  it('is the same, byte for byte and by hash, whatever the input order', () => {
    const a = render();
    const b = render([...profiles].reverse(), [...users].reverse());
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(contentHash(b)).toBe(contentHash(a));
    expect(contentHash(a)).toMatch(/^sha256-[0-9a-f]{64}$/);
  });

  it('leaves HTTP inbounds out when there are no users, since an HTTP inbound without accounts is an open proxy', () => {
    const config = render(profiles, []);
    expect(config.inbounds.map((i) => i.tag)).toEqual(['p-reality', 'p-socks', 'p-trojan', 'p-vless']);
    expect(inboundsSignature(config)).not.toBe(inboundsSignature(render()));
  });

  it('refuses a template inbound whose profile is missing, and duplicate users', () => {
    expect(() => renderConfig(renderTemplate(profiles), profiles.slice(1), users)).toThrow(RenderError);
    expect(() => render(profiles, [users[0]!, users[0]!])).toThrow(/listed twice/);
  });
});

describe('contentHash', () => {
  it('does not depend on key order', () => {
    // Every object's keys reversed, at every depth.
    const reverseKeys = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(reverseKeys)
        : value !== null && typeof value === 'object'
          ? Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)]))
          : value;
    const config = render();
    const reversed = reverseKeys(config) as typeof config;
    expect(JSON.stringify(reversed)).not.toBe(JSON.stringify(config));
    expect(contentHash(reversed)).toBe(contentHash(config));
    expect(inboundsSignature(reversed)).toBe(inboundsSignature(config));
  });

  it('changes with any user change', () => {
    expect(contentHash(render(profiles, users.slice(1)))).not.toBe(contentHash(render()));
  });
});

describe('inboundsSignature', () => {
  it('stays when only users change', () => {
    const base = inboundsSignature(render());
    expect(inboundsSignature(render(profiles, users.slice(0, 1)))).toBe(base);
    const renamed = users.map((u) => ({ ...u, trojanPassword: `${u.trojanPassword}-2`, vlessId: u.vlessId.replace(/^./, 'f') }));
    expect(inboundsSignature(render(profiles, renamed))).toBe(base);
    expect(inboundsSignature(renderTemplate(profiles))).toBe(base);
  });

  it('changes when a port, a setting or the set of profiles changes', () => {
    const base = inboundsSignature(render());
    const moved = profiles.map((p) => (p.profileId === 'p-socks' ? { ...p, port: 1081 } : p));
    expect(inboundsSignature(render(moved))).not.toBe(base);
    const renamed = profiles.map((p) => (p.profileId === 'p-reality' ? { ...p, settings: { ...p.settings, serverNames: ['other.example.com'] } } : p));
    expect(inboundsSignature(render(renamed))).not.toBe(base);
    expect(inboundsSignature(render(profiles.slice(1)))).not.toBe(base);
  });
});

describe('usersByInbound', () => {
  it('gives each inbound its kind and CoreUser values keyed by email or username', () => {
    const byInbound = usersByInbound(render());
    expect([...byInbound.keys()]).toEqual(['p-http', 'p-reality', 'p-socks', 'p-trojan', 'p-vless']);
    expect([...byInbound].map(([tag, { kind }]) => [tag, kind])).toEqual([
      ['p-http', 'http'],
      ['p-reality', 'vless-reality'],
      ['p-socks', 'socks'],
      ['p-trojan', 'trojan-tls'],
      ['p-vless', 'vless'],
    ]);
    const alice = users[1]!;
    expect(byInbound.get('p-reality')!.users.get('u-alice')).toEqual({
      email: 'u-alice',
      level: 0,
      account: { protocol: 'vless', id: alice.vlessId, flow: 'xtls-rprx-vision' },
    });
    expect(byInbound.get('p-vless')!.users.get('u-alice')).toEqual({ email: 'u-alice', level: 0, account: { protocol: 'vless', id: alice.vlessId } });
    expect(byInbound.get('p-trojan')!.users.get('u-alice')).toEqual({ email: 'u-alice', level: 0, account: { protocol: 'trojan', password: 'alice-trojan' } });
    expect(byInbound.get('p-socks')!.users.get('alice')).toEqual({
      email: 'alice',
      level: 0,
      account: { protocol: 'socks', username: 'alice', password: 'alice-pass' },
    });
  });

  it('round-trips: the users read back are the users rendered, and a diff shows exactly the change', () => {
    const before = usersByInbound(render(profiles, users.slice(0, 1)));
    const after = usersByInbound(render());
    for (const [tag, { users: now }] of after) {
      const was = before.get(tag)!.users;
      const added = [...now.keys()].filter((k) => !was.has(k));
      const removed = [...was.keys()].filter((k) => !now.has(k));
      expect({ tag, added, removed }).toEqual({ tag, added: [tag === 'p-http' || tag === 'p-socks' ? 'alice' : 'u-alice'], removed: [] });
      for (const [key, user] of was) expect(now.get(key)).toEqual(user);
    }
    // What was read back is exactly what was rendered: the inbound's clients, in order.
    const trojan = inbound(render(), 'p-trojan');
    const clients = trojan.protocol === 'trojan' ? trojan.settings.clients : [];
    expect([...after.get('p-trojan')!.users.values()].map((u) => ({ password: u.account.protocol === 'trojan' && u.account.password, email: u.email, level: u.level }))).toEqual(clients);
  });
});
