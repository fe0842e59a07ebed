/**
 * The nginx edge driver against real nginx 1.22 + ModSecurity 3 + CRS 3.3.4
 * (Debian), with a loopback upstream that counts what reaches it: proxying,
 * caching, WAF levels, blocking, access rules, per-site rejection with the
 * last good version kept, and reloads that drop no request.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../infra/logger.js';
import type { SiteOutcome, SiteSpec } from '../../producers/edge/model.js';
import { NginxEdge } from '../../workers/edge/nginx/apply.js';
import { BLOCKED_BODY, BLOCKED_STATUS } from '../../workers/edge/nginx/site.js';
import { freePort, get, getTls, requestLoop, selfSigned } from '../support/edge-http.js';
import { siteSpec } from '../support/edge-sites.js';

async function eventually<T>(probe: () => T | undefined, timeoutMs = 3_000): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const root = mkdtempSync(path.join(tmpdir(), 'edge-nginx-'));
/** Requests the upstream saw, by "host path". */
const seen = new Map<string, number>();
const count = (host: string, urlPath: string): number => seen.get(`${host} ${urlPath}`) ?? 0;
let upstream: Server;
let upstreamPort = 0;
let httpPort = 0;
let httpsPort = 0;
let edge: NginxEdge;

const XSS = `/?q=${encodeURIComponent('<script>alert(1)</script>')}`;
/** Caught only by CRS rule 942450 (SQL hex encoding, tag paranoia-level/2, CRITICAL: 5 points, the blocking threshold). */
const PL2_ONLY = '/?id=0x41414141';

function site(siteId: string, overrides: Partial<SiteSpec> = {}): SiteSpec {
  return siteSpec(siteId, { upstreams: [{ host: '127.0.0.1', port: upstreamPort, weight: 1 }], ...overrides });
}

/** The sites every apply of this file keeps (apply serves exactly the set it is given). */
let base: SiteSpec[] = [];
const apply = (extra: SiteSpec[] = []): Promise<SiteOutcome[]> => edge.apply({ version: 1, sites: [...base, ...extra] });

beforeAll(async () => {
  upstream = createServer((req, res) => {
    const key = `${req.headers.host ?? ''} ${req.url ?? ''}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    res.setHeader('Content-Type', 'text/plain');
    res.end(`upstream ${req.url ?? ''}`);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  upstreamPort = (upstream.address() as AddressInfo).port;
  httpPort = await freePort();
  httpsPort = await freePort();
  edge = new NginxEdge({ root, address: '127.0.0.1', httpPort, httpsPort, logger: createLogger('silent') });
  await edge.start();
  base = [
    site('proxy', { headers: { 'X-Site': 'proxy "one"', 'X-Dollar': '$host' } }),
    site('cache', { cache: { enabled: true, ttlSeconds: 60, bypass: ['/live/'] } }),
    site('waf-off', { waf: { level: 'off' } }),
    site('waf-detect', { waf: { level: 'detect' } }),
    site('waf-1', { waf: { level: '1' } }),
    site('waf-2', { waf: { level: '2' } }),
    site('blocked', { blocked: true }),
    site('denied', { access: { allow: [], deny: ['127.0.0.0/8'], blockedCountries: [] } }),
  ];
  const outcomes = await apply();
  expect(outcomes.filter((o) => o.status !== 'applied')).toEqual([]);
});

afterAll(async () => {
  await edge?.stop();
  await new Promise((resolve) => upstream?.close(resolve));
  rmSync(root, { recursive: true, force: true });
});

describe('nginx edge', () => {
  it('proxies a site to its upstream with its custom headers', async () => {
    const answer = await get(httpPort, 'proxy.test', '/hello');
    expect(answer).toMatchObject({ status: 200, body: 'upstream /hello' });
    expect(answer.headers['x-site']).toBe('proxy "one"');
    expect(answer.headers['x-dollar']).toBe('$host');
    expect(count('proxy.test', '/hello')).toBe(1);
    expect((await get(httpPort, 'nobody.test', '/')).status).toBe(421);
  });

  it('caches: the second GET is a HIT and the upstream saw one request; bypass paths are never cached', async () => {
    expect((await get(httpPort, 'cache.test', '/page')).headers['x-cache-status']).toBe('MISS');
    const second = await get(httpPort, 'cache.test', '/page');
    expect(second).toMatchObject({ status: 200, body: 'upstream /page' });
    expect(second.headers['x-cache-status']).toBe('HIT');
    expect(count('cache.test', '/page')).toBe(1);
    for (let i = 0; i < 2; i += 1) expect((await get(httpPort, 'cache.test', '/live/feed')).headers['x-cache-status']).toBe('BYPASS');
    expect(count('cache.test', '/live/feed')).toBe(2);
  });

  it('WAF: XSS is 403 at level 1, passes at off and detect (logged); a paranoia-2-only payload passes at 1 and is 403 at 2', async () => {
    expect((await get(httpPort, 'waf-1.test', XSS)).status).toBe(403);
    expect(count('waf-1.test', XSS)).toBe(0);
    expect((await get(httpPort, 'waf-off.test', XSS)).status).toBe(200);
    expect((await get(httpPort, 'waf-detect.test', XSS)).status).toBe(200);
    expect(count('waf-detect.test', XSS)).toBe(1);
    // DetectionOnly still runs the rules: the audit log holds the transaction with the XSS rule's id.
    // The entry is written as the transaction ends, which may be just after the answer reached us.
    const detected = await eventually(() => readFileSync(edge.paths.modsecAuditLog, 'utf8').split(/\n---\w+---A--\n/).find((entry) => entry.includes('Host: waf-detect.test')));
    expect(detected).toContain('[id "941100"]');
    expect((await get(httpPort, 'waf-1.test', PL2_ONLY)).status).toBe(200);
    expect((await get(httpPort, 'waf-2.test', PL2_ONLY)).status).toBe(403);
    expect((await get(httpPort, 'waf-2.test', '/?id=42')).status).toBe(200);
  });

  it('WAF levels follow the server nginx chose, not the Host header (absolute-form request lines)', async () => {
    // nginx routes `GET http://waf-2.test/…` to waf-2 whatever Host says; ModSecurity must still run waf-2's level.
    expect((await get(httpPort, 'waf-1.test', `http://waf-2.test${PL2_ONLY}`)).status).toBe(403);
    expect((await get(httpPort, 'waf-detect.test', `http://waf-1.test${XSS}`)).status).toBe(403);
  });

  it('a blocked site answers the fixed page and its upstream sees nothing', async () => {
    const answer = await get(httpPort, 'blocked.test', '/anything');
    expect(answer).toMatchObject({ status: BLOCKED_STATUS, body: BLOCKED_BODY });
    expect(count('blocked.test', '/anything')).toBe(0);
  });

  it('denies a CIDR: 127.0.0.0/8 gets 403 and the upstream sees nothing', async () => {
    expect((await get(httpPort, 'denied.test', '/')).status).toBe(403);
    expect(count('denied.test', '/')).toBe(0);
  });

  it('serves ACME HTTP-01 tokens from the challenge directory on every site, blocked and denied ones included', async () => {
    writeFileSync(path.join(edge.paths.acmeChallenges, 'tok-123'), 'tok-123.thumbprint');
    for (const host of ['proxy.test', 'blocked.test', 'denied.test', 'waf-2.test']) {
      expect(await get(httpPort, host, '/.well-known/acme-challenge/tok-123')).toMatchObject({ status: 200, body: 'tok-123.thumbprint' });
    }
    expect(count('proxy.test', '/.well-known/acme-challenge/tok-123')).toBe(0);
  });

  it('rejects one site with a broken upstream, with nginx’s message, while 20 others apply; its last good version keeps serving', async () => {
    const fragileV1 = site('fragile', { version: 1, headers: { 'X-Version': '1' } });
    expect((await apply([fragileV1])).find((o) => o.siteId === 'fragile')).toEqual({ siteId: 'fragile', version: 1, status: 'applied' });

    const others = Array.from({ length: 20 }, (_, i) => site(`bulk-${i}`, { headers: { 'X-Bulk': String(i) } }));
    const fragileV2 = site('fragile', { version: 2, upstreams: [{ host: 'nosuch.invalid', port: 80, weight: 1 }] });
    const outcomes = await apply([fragileV2, ...others]);
    const rejected = outcomes.filter((o) => o.status === 'rejected');
    expect(rejected).toHaveLength(1);
    expect(rejected[0]).toMatchObject({ siteId: 'fragile', version: 2, status: 'rejected', servingVersion: 1 });
    expect(rejected[0]?.status === 'rejected' && rejected[0].error).toMatch(/host not found in upstream "nosuch\.invalid:80" in .*\/sites\/fragile\.conf:\d+/);
    expect(outcomes.filter((o) => o.siteId.startsWith('bulk-') && o.status === 'applied')).toHaveLength(20);

    expect((await get(httpPort, 'bulk-7.test', '/')).headers['x-bulk']).toBe('7');
    const fragile = await get(httpPort, 'fragile.test', '/still');
    expect(fragile).toMatchObject({ status: 200, body: 'upstream /still' });
    expect(fragile.headers['x-version']).toBe('1');
    base = [...base, fragileV1];
  });

  it('serves a site over TLS with its certificate; a site with an invalid certificate is rejected alone', async () => {
    const good = selfSigned(root, 'tls.test');
    const bad = { certPath: path.join(root, 'bad.crt'), keyPath: path.join(root, 'bad.key') };
    writeFileSync(bad.certPath, '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n');
    writeFileSync(bad.keyPath, 'not a key\n');
    const certificates = new Map([['tls', good], ['badcert', bad]]);
    const outcomes = await edge.apply({ version: 1, sites: [...base, site('tls', { tls: { mode: 'custom' } }), site('badcert', { tls: { mode: 'custom' } })] }, certificates);
    expect(outcomes.find((o) => o.siteId === 'tls')?.status).toBe('applied');
    const rejected = outcomes.find((o) => o.siteId === 'badcert');
    expect(rejected).toMatchObject({ status: 'rejected', servingVersion: null });
    expect(rejected?.status === 'rejected' && rejected.error).toContain(bad.certPath);
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(1);
    expect(await getTls(httpsPort, 'tls.test', readFileSync(good.certPath, 'utf8'))).toEqual({ status: 200, body: 'upstream /' });
  });

  it('reloads: a steady request loop during 10 applies has zero failed requests', async () => {
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

  it('after a restart on the same state directory, the last good versions serve', async () => {
    await edge.stop();
    edge = new NginxEdge({ root, address: '127.0.0.1', httpPort, httpsPort, logger: createLogger('silent') });
    await edge.start();
    const fragile = await get(httpPort, 'fragile.test', '/after-restart');
    expect(fragile.headers['x-version']).toBe('1');
    expect((await get(httpPort, 'churn.test', '/')).headers['x-churn']).toBe('10');
  });
});
