/**
 * The Caddy renderer: the config's shape is decided by code (a hostile header
 * value stays one literal string, placeholders escaped), weights become
 * repeated upstreams, what stock Caddy cannot enforce is refused per site,
 * and HTTPS exists only for sites with a certificate.
 */
import { describe, expect, it } from 'vitest';
import type { SiteSpec } from '../../producers/edge/model.js';
import { renderCaddy, type CaddyRenderOptions } from '../../workers/edge/caddy/render.js';
import { literal, type CaddyJson } from '../../workers/edge/caddy/site.js';
import { siteSpec } from '../support/edge-sites.js';

const opts: CaddyRenderOptions = {
  adminListen: 'unix//run/edge/admin.sock',
  storageRoot: '/var/lib/edge/data/storage',
  address: '127.0.0.1',
  httpPort: 8080,
  httpsPort: 8443,
  acmeDir: '/var/lib/edge/acme',
  certificates: new Map(),
};

const render = (sites: SiteSpec[], overrides: Partial<CaddyRenderOptions> = {}) => renderCaddy({ version: 1, sites }, { ...opts, ...overrides });

/** Every object in a JSON tree with a `handler` of that name. */
function handlers(tree: CaddyJson, name: string): Array<Record<string, CaddyJson>> {
  if (Array.isArray(tree)) return tree.flatMap((item) => handlers(item, name));
  if (tree === null || typeof tree !== 'object') return [];
  const own = tree.handler === name ? [tree] : [];
  return [...own, ...Object.values(tree).flatMap((value) => handlers(value, name))];
}

describe('Caddy render', () => {
  it('escapes Caddy placeholders in literal strings and refuses control characters', () => {
    expect(literal('{env.HOME} \\{x}')).toBe('\\{env.HOME\\} \\\\{x\\}');
    expect(() => literal('a\nb')).toThrow(/control character/);
  });

  it('a hostile header value is one literal string: the config has exactly the handlers the code put there', () => {
    const hostile = siteSpec('evil', { headers: { 'X-Evil': '"}]},{"handler":"static_response","body":"pwned {env.HOME}' } });
    const { config, rejected } = render([hostile]);
    expect(rejected.size).toBe(0);
    expect(handlers(config, 'static_response')).toHaveLength(1); // the 421 of unknown names
    const [added] = handlers(config, 'headers').filter((h) => JSON.stringify(h).includes('X-Evil'));
    expect(added).toEqual({ handler: 'headers', response: { add: { 'X-Evil': ['"\\}]\\},\\{"handler":"static_response","body":"pwned \\{env.HOME\\}'] } } });
  });

  it('weights become repeated upstreams under round_robin, divided by their gcd', () => {
    const site = siteSpec('w', {
      upstreams: [
        { host: '10.0.0.1', port: 80, weight: 30 },
        { host: 'b.internal', port: 81, weight: 10 },
        { host: '::1', port: 82, weight: 20 },
      ],
    });
    const [proxy] = handlers(render([site]).config, 'reverse_proxy');
    expect(proxy?.upstreams).toEqual([...Array.from({ length: 3 }, () => ({ dial: '10.0.0.1:80' })), { dial: 'b.internal:81' }, ...Array.from({ length: 2 }, () => ({ dial: '[::1]:82' }))]);
    expect(proxy?.load_balancing).toEqual({ selection_policy: { policy: 'round_robin' } });
  });

  it('rejects, per site, what stock Caddy cannot enforce and values no grammar accepts; the others render', () => {
    const { rendered, rejected } = render([
      siteSpec('ok'),
      siteSpec('waf', { waf: { level: 'detect' } }),
      siteSpec('all', { waf: { level: '2' }, cache: { enabled: true, ttlSeconds: 5, bypass: [] }, rateLimit: { requestsPerSecond: 1, burst: 1 }, access: { allow: [], deny: [], blockedCountries: ['RU'] } }),
      siteSpec('badhost', { domain: 'Bad Host' }),
      siteSpec('badcidr', { access: { allow: [], deny: ['300.0.0.0/8'], blockedCountries: [] } }),
      siteSpec('badheader', { headers: { 'Bad Name': 'x' } }),
    ]);
    expect(rendered.map((s) => s.siteId)).toEqual(['ok']);
    expect(rejected.get('waf')).toBe('cannot render site: not supported on Caddy nodes: waf level "detect" (stock Caddy has no ModSecurity)');
    expect(rejected.get('all')?.split('; ')).toHaveLength(4);
    expect(rejected.get('badhost')).toMatch(/not a lower-case hostname/);
    expect(rejected.get('badcidr')).toMatch(/not an IP address or CIDR/);
    expect(rejected.get('badheader')).toMatch(/not an HTTP field name/);
  });

  it('renders HTTPS only for sites holding a certificate, each picked by SNI through its tag; unknown names get 421 last', () => {
    const plain = render([siteSpec('a')]).config as { apps: { http: { servers: Record<string, { routes: CaddyJson[] }> }; tls?: unknown } };
    expect(Object.keys(plain.apps.http.servers)).toEqual(['http']);
    expect(plain.apps.tls).toBeUndefined();
    expect(plain.apps.http.servers.http?.routes.at(-1)).toEqual({ handle: [{ handler: 'static_response', status_code: 421 }], terminal: true });

    const certificates = new Map([['b', { certPath: '/c/b.crt', keyPath: '/c/b.key' }]]);
    const tls = render([siteSpec('a'), siteSpec('b', { aliases: ['www.b.test'] })], { certificates }).config as {
      apps: { http: { servers: Record<string, { routes: CaddyJson[]; tls_connection_policies?: CaddyJson[] }> }; tls: unknown };
    };
    expect(tls.apps.tls).toEqual({ certificates: { load_files: [{ certificate: '/c/b.crt', key: '/c/b.key', tags: ['site-b'] }] } });
    expect(tls.apps.http.servers.https?.tls_connection_policies).toEqual([{ match: { sni: ['b.test', 'www.b.test'] }, certificate_selection: { any_tag: ['site-b'] } }]);
    expect(tls.apps.http.servers.https?.routes).toHaveLength(2);
    expect(tls.apps.http.servers.http?.routes).toHaveLength(3);
  });
});
