/**
 * The Caddy edge driver against Debian's real Caddy 2.6.2 with loopback
 * upstreams that count what reaches them: proxying, weights, blocking,
 * access rules, ACME tokens, refusal of what stock Caddy cannot enforce,
 * per-site rejection with the last good version kept, reloads that drop no
 * request, and the same answers as an nginx node for the same site set.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SiteOutcome, SiteSpec } from '../../producers/edge/model.js';
import { CaddyEdge } from '../../workers/edge/caddy/apply.js';
import { MIGRATE_REQ_SYSCTL, reloadsKeepQueuedConnections } from '../../workers/edge/caddy/caddy-process.js';
import { NginxEdge } from '../../workers/edge/nginx/apply.js';
import { BLOCKED_BODY, BLOCKED_HEADER, BLOCKED_STATUS } from '../../workers/edge/nginx/site.js';
import { countingUpstream, freePort, get, getTls, requestLoop, selfSigned, type Answer, type CountingUpstream } from '../support/edge-http.js';
import { siteSpec } from '../support/edge-sites.js';

const root = mkdtempSync(path.join(tmpdir(), 'edge-caddy-'));
/** What the drivers warn about, one JSON line each. */
const warnings: string[] = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
let upstream: CountingUpstream;
let upstreamB: CountingUpstream;
let httpPort = 0;
let httpsPort = 0;
let edge: CaddyEdge;
/** The node setting Caddy reloads need (see reloadsKeepQueuedConnections): set for this file when we may, put back after. */
let migrateReqBefore: string | undefined;

function site(siteId: string, overrides: Partial<SiteSpec> = {}): SiteSpec {
  return siteSpec(siteId, { upstreams: [{ host: '127.0.0.1', port: upstream.port, weight: 1 }], ...overrides });
}

const rejectedOf = (outcomes: SiteOutcome[], siteId: string) => outcomes.find((o) => o.siteId === siteId);
const errorOf = (outcome: SiteOutcome | undefined): string => (outcome?.status === 'rejected' ? outcome.error : '');

/** A site set both kinds of node can serve (no WAF, cache, rate limit or country blocking): also the parity test's. */
const compatible = (): SiteSpec[] => [
  site('proxy', { aliases: ['www.proxy.test'], headers: { 'X-Site': 'proxy "one"', 'X-Dollar': '$host', 'X-Brace': '{env.HOME} \\{x}' } }),
  site('blocked', { blocked: true, headers: { 'X-Site': 'blocked' } }),
  site('denied', { access: { allow: [], deny: ['127.0.0.0/8'], blockedCountries: [] }, headers: { 'X-Site': 'denied' } }),
  site('allowed', { access: { allow: ['127.0.0.1/32'], deny: [], blockedCountries: [] } }),
  site('closed', { access: { allow: ['10.0.0.0/8'], deny: [], blockedCountries: [] } }),
];

/** The sites every apply of this file keeps (apply serves exactly the set it is given). */
let base: SiteSpec[] = [];
const apply = (extra: SiteSpec[] = []): Promise<SiteOutcome[]> => edge.apply({ version: 1, sites: [...base, ...extra] });

beforeAll(async () => {
  if (!(await reloadsKeepQueuedConnections())) {
    try {
      migrateReqBefore = readFileSync(MIGRATE_REQ_SYSCTL, 'utf8');
      writeFileSync(MIGRATE_REQ_SYSCTL, '1');
    } catch {
      migrateReqBefore = undefined; // not root: the reload test says why it fails
    }
  }
  upstream = await countingUpstream('upstream');
  upstreamB = await countingUpstream('upstream-b');
  httpPort = await freePort();
  httpsPort = await freePort();
  edge = new CaddyEdge({ root, address: '127.0.0.1', httpPort, httpsPort, logger });
  await edge.start();
  base = [
    ...compatible(),
    site('weighted', {
      upstreams: [
        { host: '127.0.0.1', port: upstream.port, weight: 30 },
        { host: '127.0.0.1', port: upstreamB.port, weight: 10 },
      ],
    }),
  ];
  const outcomes = await apply();
  expect(outcomes.filter((o) => o.status !== 'applied')).toEqual([]);
});

afterAll(async () => {
  await edge?.stop();
  await upstream?.close();
  await upstreamB?.close();
  rmSync(root, { recursive: true, force: true });
  if (migrateReqBefore !== undefined) writeFileSync(MIGRATE_REQ_SYSCTL, migrateReqBefore);
});

describe('Caddy edge', () => {
  it('proxies a site (domain and alias) with its custom headers, placeholders left literal; unknown names get 421', async () => {
    const answer = await get(httpPort, 'proxy.test', '/hello');
    expect(answer).toMatchObject({ status: 200, body: 'upstream /hello' });
    expect(answer.headers['x-site']).toBe('proxy "one"');
    expect(answer.headers['x-dollar']).toBe('$host');
    expect(answer.headers['x-brace']).toBe('{env.HOME} \\{x}');
    expect(upstream.count('proxy.test', '/hello')).toBe(1);
    expect(await get(httpPort, 'www.proxy.test', '/alias')).toMatchObject({ status: 200, body: 'upstream /alias' });
    expect((await get(httpPort, 'nobody.test', '/')).status).toBe(421);
  });

  it('spreads requests by weight (30:10 is 3:1)', async () => {
    const bodies = [];
    for (let i = 0; i < 8; i += 1) bodies.push((await get(httpPort, 'weighted.test', '/w')).body);
    expect(bodies.filter((b) => b === 'upstream /w')).toHaveLength(6);
    expect(bodies.filter((b) => b === 'upstream-b /w')).toHaveLength(2);
  });

  it('a blocked site answers the fixed page and its upstream sees nothing', async () => {
    const answer = await get(httpPort, 'blocked.test', '/anything');
    expect(answer).toMatchObject({ status: BLOCKED_STATUS, body: BLOCKED_BODY });
    expect(answer.headers[BLOCKED_HEADER.toLowerCase()]).toBe('1');
    expect(upstream.count('blocked.test', '/anything')).toBe(0);
  });

  it('access rules: deny 127.0.0.0/8 is 403, an allow list without us is 403, with us 200; the upstream sees no denied request', async () => {
    expect((await get(httpPort, 'denied.test', '/')).status).toBe(403);
    expect((await get(httpPort, 'closed.test', '/')).status).toBe(403);
    expect(upstream.count('denied.test', '/') + upstream.count('closed.test', '/')).toBe(0);
    expect((await get(httpPort, 'allowed.test', '/')).status).toBe(200);
  });

  it('serves ACME HTTP-01 tokens from the challenge directory on every site, blocked and denied ones included', async () => {
    writeFileSync(path.join(edge.paths.acmeChallenges, 'tok-123'), 'tok-123.thumbprint');
    for (const host of ['proxy.test', 'blocked.test', 'denied.test', 'closed.test']) {
      expect(await get(httpPort, host, '/.well-known/acme-challenge/tok-123')).toMatchObject({ status: 200, body: 'tok-123.thumbprint' });
    }
    expect((await get(httpPort, 'proxy.test', '/.well-known/acme-challenge/none')).status).toBe(404);
    expect(upstream.count('proxy.test', '/.well-known/acme-challenge/tok-123')).toBe(0);
  });

  it('rejects sites asking for a WAF level, a cache, a rate limit or country blocking with a clear error; the rest applies and a changed site keeps its last good version', async () => {
    const featureV1 = site('feature', { version: 1, headers: { 'X-Version': '1' } });
    expect(rejectedOf(await apply([featureV1]), 'feature')).toEqual({ siteId: 'feature', version: 1, status: 'applied' });
    const outcomes = await apply([
      site('feature', { version: 2, waf: { level: '1' } }),
      site('cached', { cache: { enabled: true, ttlSeconds: 60, bypass: [] } }),
      site('limited', { rateLimit: { requestsPerSecond: 10, burst: 5 } }),
      site('geo', { access: { allow: [], deny: [], blockedCountries: ['KP'] } }),
      site('fresh'),
    ]);
    expect(rejectedOf(outcomes, 'feature')).toMatchObject({ status: 'rejected', version: 2, servingVersion: 1 });
    expect(errorOf(rejectedOf(outcomes, 'feature'))).toBe('cannot render site: not supported on Caddy nodes: waf level "1" (stock Caddy has no ModSecurity)');
    expect(errorOf(rejectedOf(outcomes, 'cached'))).toContain('caching (stock Caddy has no proxy cache)');
    expect(errorOf(rejectedOf(outcomes, 'limited'))).toContain('rate limits (stock Caddy has no rate-limit handler)');
    expect(errorOf(rejectedOf(outcomes, 'geo'))).toContain('country blocking (stock Caddy has no GeoIP matcher)');
    expect(outcomes.filter((o) => o.status === 'rejected').map((o) => o.siteId).sort()).toEqual(['cached', 'feature', 'geo', 'limited']);
    expect((await get(httpPort, 'feature.test', '/')).headers['x-version']).toBe('1');
    expect((await get(httpPort, 'fresh.test', '/')).status).toBe(200);
    expect((await get(httpPort, 'cached.test', '/')).status).toBe(421);
    base = [...base, featureV1];
  });

  it('rejects a site whose upstream does not resolve, in nginx’s words, while 20 others apply', async () => {
    const others = Array.from({ length: 20 }, (_, i) => site(`bulk-${i}`, { headers: { 'X-Bulk': String(i) } }));
    const outcomes = await apply([site('lost', { upstreams: [{ host: 'nosuch.invalid', port: 80, weight: 1 }] }), ...others]);
    expect(outcomes.filter((o) => o.status === 'rejected')).toEqual([{ siteId: 'lost', version: 1, status: 'rejected', error: 'host not found in upstream "nosuch.invalid:80"', servingVersion: null }]);
    expect((await get(httpPort, 'bulk-7.test', '/')).headers['x-bulk']).toBe('7');
  });

  it('a site whose certificate is invalid is rejected alone with Caddy’s error; its last good version (and certificate) keeps serving', async () => {
    const good = selfSigned(root, 'tls.test');
    const goodPem = readFileSync(good.certPath, 'utf8');
    const other = selfSigned(root, 'other.test');
    const tlsV1 = site('tls', { version: 1, tls: { mode: 'custom' }, headers: { 'X-Version': '1' } });
    const otherSite = site('other', { tls: { mode: 'custom' } });
    const first = await edge.apply({ version: 1, sites: [...base, tlsV1, otherSite] }, new Map([['tls', good], ['other', other]]));
    expect(first.filter((o) => o.status !== 'applied')).toEqual([]);
    expect(await getTls(httpsPort, 'tls.test', goodPem)).toEqual({ status: 200, body: 'upstream /' });

    // The next delivery overwrites the site's files in place with something that is no certificate.
    const goodKey = readFileSync(good.keyPath, 'utf8');
    writeFileSync(good.certPath, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    writeFileSync(good.keyPath, 'not a key\n');
    const broken = { certPath: path.join(root, 'new.crt'), keyPath: path.join(root, 'new.key') };
    writeFileSync(broken.certPath, 'garbage');
    writeFileSync(broken.keyPath, 'garbage');
    const tlsV2 = site('tls', { version: 2, tls: { mode: 'custom' }, headers: { 'X-Version': '2' } });
    const outcomes = await edge.apply({ version: 1, sites: [...base, tlsV2, otherSite, site('newbad', { tls: { mode: 'custom' } })] }, new Map([['tls', good], ['other', other], ['newbad', broken]]));
    expect(outcomes.filter((o) => o.status === 'rejected').map((o) => o.siteId).sort()).toEqual(['newbad', 'tls']);
    expect(rejectedOf(outcomes, 'tls')).toMatchObject({ version: 2, servingVersion: 1 });
    expect(rejectedOf(outcomes, 'newbad')).toMatchObject({ servingVersion: null });
    expect(errorOf(rejectedOf(outcomes, 'tls'))).toMatch(/loading certificates: .*PEM/);
    expect(await getTls(httpsPort, 'tls.test', goodPem)).toEqual({ status: 200, body: 'upstream /' });
    expect(await getTls(httpsPort, 'other.test', readFileSync(other.certPath, 'utf8'))).toEqual({ status: 200, body: 'upstream /' });
    expect((await get(httpPort, 'tls.test', '/')).headers['x-version']).toBe('1');
    // Put the good files back: the later applies of this file reuse this certificate set.
    writeFileSync(good.certPath, goodPem);
    writeFileSync(good.keyPath, goodKey);
    base = [...base, tlsV1, otherSite];
  });

  it('loads with If-Match: a config changed behind the driver is detected (412) and the apply still lands', async () => {
    await adminPost(edge.paths.adminSocket, '/config/logging/logs/default/level', '"ERROR"');
    warnings.length = 0;
    const outcomes = await apply([site('after-412', { headers: { 'X-After': 'yes' } })]);
    expect(outcomes.every((o) => o.status === 'applied')).toBe(true);
    expect((await get(httpPort, 'after-412.test', '/')).headers['x-after']).toBe('yes');
    expect(warnings.filter((line) => line.includes('config changed behind the edge driver'))).toHaveLength(1);
  });

  it('reloads: a steady request loop during 10 applies has zero failed requests (with net.ipv4.tcp_migrate_req=1)', async () => {
    expect(await reloadsKeepQueuedConnections(), 'net.ipv4.tcp_migrate_req must be 1 (run as root, or set it on the host)').toBe(true);
    const pidBefore = edge.pid;
    const loop = requestLoop(httpPort, 'proxy.test', '/loop');
    for (let i = 1; i <= 10; i += 1) {
      const outcomes = await apply([site('churn', { version: i, headers: { 'X-Churn': String(i) } })]);
      expect(outcomes.every((o) => o.status === 'applied')).toBe(true);
      expect((await get(httpPort, 'churn.test', '/')).headers['x-churn']).toBe(String(i));
    }
    const { failures, requests } = await loop.stop();
    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(50);
    expect(edge.pid).toBe(pidBefore);
  });

  it('after a restart on the same state directory, the last good versions serve, certificates included', async () => {
    await edge.stop();
    edge = new CaddyEdge({ root, address: '127.0.0.1', httpPort, httpsPort, logger });
    await edge.start();
    expect((await get(httpPort, 'feature.test', '/')).headers['x-version']).toBe('1');
    expect((await get(httpPort, 'churn.test', '/')).headers['x-churn']).toBe('10');
    expect((await getTls(httpsPort, 'tls.test', readFileSync(path.join(edge.paths.lastGoodCertificates, 'tls.crt'), 'utf8'))).status).toBe(200);
  });

  it('the same site set gives the same answers on a Caddy node and on an nginx node', async () => {
    const nginxRoot = mkdtempSync(path.join(tmpdir(), 'edge-parity-nginx-'));
    const caddyRoot = mkdtempSync(path.join(tmpdir(), 'edge-parity-caddy-'));
    const ports = { nginx: await freePort(), caddy: await freePort() };
    const nginx = new NginxEdge({ root: nginxRoot, address: '127.0.0.1', httpPort: ports.nginx, httpsPort: await freePort(), logger });
    const caddy = new CaddyEdge({ root: caddyRoot, address: '127.0.0.1', httpPort: ports.caddy, httpsPort: await freePort(), logger });
    try {
      await Promise.all([nginx.start(), caddy.start()]);
      const desired = { version: 1, sites: [...compatible(), site('dead', { upstreams: [{ host: '127.0.0.1', port: 9, weight: 1 }], headers: { 'X-Site': 'dead' } })] };
      const [fromNginx, fromCaddy] = await Promise.all([nginx.apply(desired), caddy.apply(desired)]);
      expect(fromCaddy).toEqual(fromNginx);
      for (const dir of [nginx.paths.acmeChallenges, caddy.paths.acmeChallenges]) writeFileSync(path.join(dir, 'tok-9'), 'tok-9.thumb');
      const requests: Array<[string, string]> = [
        ['proxy.test', '/'],
        ['proxy.test', '/a/b?c=d&e=%7Bx%7D'],
        ['www.proxy.test', '/alias'],
        ['PROXY.test', '/case'],
        ['proxy.test:80', '/with-port'],
        ['blocked.test', '/'],
        ['blocked.test', '/deep/path?q=1'],
        ['denied.test', '/'],
        ['allowed.test', '/ok'],
        ['closed.test', '/'],
        ['dead.test', '/'],
        ['nobody.test', '/'],
        ['proxy.test', '/.well-known/acme-challenge/tok-9'],
        ['blocked.test', '/.well-known/acme-challenge/tok-9'],
        ['denied.test', '/.well-known/acme-challenge/tok-9'],
        ['proxy.test', '/.well-known/acme-challenge/missing'],
      ];
      const compared = (answer: Answer) => ({
        status: answer.status,
        // Bodies the edge writes itself for errors differ (nginx's HTML pages, Caddy's empty bodies); the upstream's, the blocked page and tokens must not.
        body: answer.status < 400 || answer.status === BLOCKED_STATUS ? answer.body : '(edge error page)',
        headers: Object.fromEntries(['x-site', 'x-dollar', 'x-brace', BLOCKED_HEADER.toLowerCase()].map((name) => [name, answer.headers[name]])),
      });
      for (const [host, urlPath] of requests) {
        const [a, b] = await Promise.all([get(ports.nginx, host, urlPath), get(ports.caddy, host, urlPath)]);
        expect({ request: `${host} ${urlPath}`, ...compared(b) }).toEqual({ request: `${host} ${urlPath}`, ...compared(a) });
      }
    } finally {
      await Promise.all([nginx.stop(), caddy.stop()]);
      rmSync(nginxRoot, { recursive: true, force: true });
      rmSync(caddyRoot, { recursive: true, force: true });
    }
  });
});

/** A change to Caddy's config by someone else than the driver (as a second applier would make). */
function adminPost(socketPath: string, urlPath: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, method: 'PATCH', path: urlPath, headers: { 'Content-Type': 'application/json' } }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`admin answered ${res.statusCode ?? 0}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}
