/**
 * Observability of the nginx edge against real nginx + ModSecurity + CRS:
 * the requests a test makes come back, per site, as the agent's metrics and
 * its traffic tick (status classes, bytes, cache statuses, WAF blocks,
 * upstream errors), the certificate gauge equals the certificate's notAfter,
 * and a cache purge (whole site, then one path) makes the next request a
 * MISS that the upstream sees.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../infra/logger.js';
import type { SiteSpec } from '../../producers/edge/model.js';
import { NginxEdge } from '../../workers/edge/nginx/apply.js';
import { EdgeMetrics } from '../../workers/agent/edge/edge-metrics.js';
import { EdgeTraffic } from '../../workers/agent/edge/edge-traffic.js';
import { countingUpstream, freePort, get, getTls, selfSigned, type CountingUpstream } from '../support/edge-http.js';
import { siteSpec } from '../support/edge-sites.js';

const root = mkdtempSync(path.join(tmpdir(), 'edge-obs-'));
const XSS = `/?q=${encodeURIComponent('<script>alert(1)</script>')}`;
let upstream: CountingUpstream;
let upstreamPort = 0;
const count = (host: string, urlPath: string): number => upstream.count(host, urlPath);
let httpPort = 0;
let httpsPort = 0;
let edge: NginxEdge;
let metrics: EdgeMetrics;
let traffic: EdgeTraffic;
let cert: { certPath: string; keyPath: string };

const site = (siteId: string, overrides: Partial<SiteSpec> = {}): SiteSpec => siteSpec(siteId, { upstreams: [{ host: '127.0.0.1', port: upstreamPort, weight: 1 }], ...overrides });
const cached = (purge?: SiteSpec['cachePurge']): SiteSpec => site('cached', { cache: { enabled: true, ttlSeconds: 300, bypass: [] }, ...(purge ? { cachePurge: purge } : {}) });
let base: SiteSpec[] = [];

async function value(name: string, labels: Record<string, string>): Promise<number> {
  const metric = metrics.registry.getSingleMetric(name);
  const { values } = await metric!.get();
  return values.filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l)).reduce((sum, v) => sum + v.value, 0);
}

beforeAll(async () => {
  upstream = await countingUpstream('upstream', (urlPath) => (urlPath.startsWith('/missing') ? 404 : 200));
  upstreamPort = upstream.port;
  httpPort = await freePort();
  httpsPort = await freePort();
  cert = selfSigned(root, 'tls.test');
  const log = createLogger('silent');
  edge = new NginxEdge({ root, address: '127.0.0.1', httpPort, httpsPort, logger: log, certificates: new Map([['tls', cert]]) });
  metrics = new EdgeMetrics();
  traffic = new EdgeTraffic({ edge, nodeId: 'edge-1', metrics, spoolPath: path.join(root, 'traffic-spool.ndjson'), log });
  await traffic.load();
  await edge.start();
  const closed = await freePort();
  base = [site('plain'), site('waf', { waf: { level: '1' } }), site('broken', { upstreams: [{ host: '127.0.0.1', port: closed, weight: 1 }] }), site('tls', { tls: { mode: 'custom' } })];
  const outcomes = await edge.apply({ version: 1, sites: [...base, cached()] });
  expect(outcomes.filter((o) => o.status !== 'applied')).toEqual([]);
});

afterAll(async () => {
  await edge?.stop();
  await upstream?.close();
  rmSync(root, { recursive: true, force: true });
});

describe('edge observability (nginx)', () => {
  it('counts each site’s requests by status class, bytes, cache statuses, WAF blocks and upstream errors, as metrics and as a traffic tick', async () => {
    for (let i = 0; i < 7; i += 1) expect((await get(httpPort, 'plain.test', `/ok/${i}`)).status).toBe(200);
    for (let i = 0; i < 3; i += 1) expect((await get(httpPort, 'plain.test', `/missing/${i}`)).status).toBe(404);
    for (let i = 0; i < 2; i += 1) expect((await get(httpPort, 'waf.test', XSS)).status).toBe(403);
    expect((await get(httpPort, 'waf.test', '/fine')).status).toBe(200);
    expect((await get(httpPort, 'cached.test', '/page')).headers['x-cache-status']).toBe('MISS');
    expect((await get(httpPort, 'cached.test', '/page')).headers['x-cache-status']).toBe('HIT');
    expect((await get(httpPort, 'broken.test', '/')).status).toBe(502);
    // ModSecurity writes its refusal as the transaction ends, which may be just after the answer.
    await new Promise((resolve) => setTimeout(resolve, 200));
    await traffic.collect();

    const plain = { site: 'plain', node: 'edge-1' };
    expect(await value('relaygrid_edge_requests_total', { ...plain, status_class: '2xx' })).toBe(7);
    expect(await value('relaygrid_edge_requests_total', { ...plain, status_class: '4xx' })).toBe(3);
    expect(await value('relaygrid_edge_sent_bytes_total', { ...plain, status_class: '2xx' })).toBeGreaterThan(7 * 'upstream /ok/0'.length);
    expect(await value('relaygrid_edge_upstream_response_seconds', plain)).toBeGreaterThan(0);
    expect(await value('relaygrid_edge_waf_blocks_total', { site: 'waf' })).toBe(2);
    expect(await value('relaygrid_edge_waf_blocks_total', { site: 'plain' })).toBe(0);
    expect(await value('relaygrid_edge_requests_total', { site: 'waf', status_class: '4xx' })).toBe(2);
    expect(await value('relaygrid_edge_cache_requests_total', { site: 'cached', cache: 'MISS' })).toBe(1);
    expect(await value('relaygrid_edge_cache_requests_total', { site: 'cached', cache: 'HIT' })).toBe(1);
    expect(await value('relaygrid_edge_upstream_errors_total', { site: 'broken' })).toBe(1);
    expect(await value('relaygrid_edge_upstream_errors_total', { site: 'plain' })).toBe(0);

    const [tick] = traffic.spool.pending();
    const bySite = new Map(tick!.sites.map((s) => [s.siteId, s]));
    expect(bySite.get('plain')).toMatchObject({ requests2xx: '7', requests4xx: '3', requests5xx: '0', wafBlocks: '0', upstreamRequests: '10', upstreamErrors: '0' });
    expect(bySite.get('waf')).toMatchObject({ requests2xx: '1', requests4xx: '2', wafBlocks: '2', upstreamRequests: '1' });
    expect(bySite.get('cached')).toMatchObject({ requests2xx: '2', cacheHits: '1', cacheMisses: '1', upstreamRequests: '1' });
    expect(bySite.get('broken')).toMatchObject({ requests5xx: '1', upstreamErrors: '1' });
    // Exact bytes: the metric and the tick count the same requests.
    expect(Number(bySite.get('plain')!.sentBytes)).toBe((await value('relaygrid_edge_sent_bytes_total', plain)));

    // The next collection counts only what came after.
    expect((await get(httpPort, 'plain.test', '/ok/again')).status).toBe(200);
    await traffic.collect();
    expect(await value('relaygrid_edge_requests_total', { ...plain, status_class: '2xx' })).toBe(8);
    expect(traffic.spool.pending().at(-1)!.sites).toEqual([expect.objectContaining({ siteId: 'plain', requests2xx: '1' })]);
  });

  it('exposes the notAfter of the certificate a site’s server uses, in Unix seconds', async () => {
    expect((await getTls(httpsPort, 'tls.test', execFileSync('cat', [cert.certPath], { encoding: 'utf8' }))).status).toBe(200);
    const enddate = execFileSync('openssl', ['x509', '-noout', '-enddate', '-in', cert.certPath], { encoding: 'utf8' }).trim().replace(/^notAfter=/, '');
    await traffic.refreshCertificates();
    expect(await value('relaygrid_edge_certificate_not_after_seconds', { site: 'tls', node: 'edge-1' })).toBe(Date.parse(enddate) / 1000);
  });

  it('purges: after a whole-site purge the next request is a MISS the upstream sees; a path purge empties that path only', async () => {
    for (const p of ['/a', '/b']) {
      await get(httpPort, 'cached.test', p);
      expect((await get(httpPort, 'cached.test', p)).headers['x-cache-status']).toBe('HIT');
    }
    const pageBefore = count('cached.test', '/page');
    expect((await get(httpPort, 'cached.test', '/page')).headers['x-cache-status']).toBe('HIT');
    await edge.apply({ version: 2, sites: [...base, cached({ generation: 40, paths: [] })] });
    expect((await get(httpPort, 'cached.test', '/page')).headers['x-cache-status']).toBe('MISS');
    expect(count('cached.test', '/page')).toBe(pageBefore + 1);
    expect((await get(httpPort, 'cached.test', '/page')).headers['x-cache-status']).toBe('HIT');

    await get(httpPort, 'cached.test', '/a');
    await get(httpPort, 'cached.test', '/b');
    const [aBefore, bBefore] = [count('cached.test', '/a'), count('cached.test', '/b')];
    await edge.apply({ version: 3, sites: [...base, cached({ generation: 40, paths: [{ path: '/a', generation: 41 }] })] });
    expect((await get(httpPort, 'cached.test', '/a')).headers['x-cache-status']).toBe('MISS');
    expect((await get(httpPort, 'cached.test', '/b')).headers['x-cache-status']).toBe('HIT');
    expect((await get(httpPort, 'cached.test', '/page')).headers['x-cache-status']).toBe('HIT');
    expect([count('cached.test', '/a'), count('cached.test', '/b')]).toEqual([aBefore + 1, bBefore]);
  });
});
