/**
 * One site's file (sites/<siteId>.conf, included in `http {}`): its upstream,
 * cache zone and rate-limit zone, and its server block. Everything the user
 * typed reaches the text only as a Token (./escape.ts).
 */
import type { SiteSpec } from '../../../producers/edge/model.js';
import { block, comment, directive, entry, type ConfNode } from './conf.js';
import { cidr, countryCode, headerName, hostnameOf, int, pathPrefix, regexLiteral, scriptStr, siteIdOf, str, upstreamAddress, word, type Token } from './escape.js';
import { transactionIdPrefix, wafRules } from './waf.js';
import { SITE_VARIABLE, TRAFFIC_LOG_FORMAT } from './traffic-format.js';

export interface SiteRenderContext {
  address: string;
  httpPort: number;
  httpsPort: number;
  certificate: { certPath: string; keyPath: string } | undefined;
  cacheDir: string;
  /** Where every server logs its requests in the edge_traffic format (./traffic-format.ts). */
  trafficLog: string;
  /** The node's plain access log (combined format), kept beside the traffic log for people reading it. */
  accessLog: string;
  acmeDir: string;
  /** Whether the main configuration loads a GeoIP country database ($geoip_country_code). */
  geoip: boolean;
}

/**
 * The fixed answer of a blocked site: 503, because a block is an operator's
 * decision that may be lifted (451 would claim a legal reason we do not know),
 * and 503 is not cached by browsers or shared caches by default.
 */
export const BLOCKED_STATUS = 503;
export const BLOCKED_BODY = '<!doctype html><title>Site unavailable</title><h1>This site is currently unavailable.</h1>';
/** Marks answers of the edge itself (blocked page), so a client or a test can tell them from the upstream's. */
export const BLOCKED_HEADER = 'X-Edge-Blocked';

export const CACHE_STATUS_HEADER = 'X-Cache-Status';

const names = (siteId: string) => ({
  upstream: `u_${siteId}`,
  cacheZone: `c_${siteId}`,
  rateZone: `r_${siteId}`,
  // Variable names are [A-Za-z0-9_]: the id in hex, so two ids never share one.
  cacheVersion: `$cv_${Buffer.from(siteId).toString('hex')}`,
});

/**
 * Cache purges as cache-key versions: `map $request_uri $cv_<id>` answers
 * `v<generation>` (the last whole-site purge) or, for a URI purged since,
 * `v<generation>p<its purge>`, and the key starts with it. A purge makes the
 * entries it covers unreachable at the reload that brings it; nginx evicts
 * them by `inactive` and `max_size` like any cold entry. No file is touched,
 * and a node that was away purges when it applies the site.
 */
function cacheKeyMap(site: SiteSpec, variable: string): ConfNode {
  const purge = site.cachePurge ?? { generation: 0, paths: [] };
  const version = (n: number, what: string) => int(n, 0, Number.MAX_SAFE_INTEGER, what).text;
  const base = `v${version(purge.generation, 'cache generation')}`;
  return block('map', [word('$request_uri'), word(variable)], [
    directive('default', str(base)),
    // Keys are exact URIs (a path starts with "/", so never a map keyword or a "~" regex).
    ...purge.paths.map((p) => entry(pathPrefix(p.path), str(`${base}p${version(p.generation, 'purge generation')}`))),
  ]);
}

function upstreamBlock(site: SiteSpec, upstream: string): ConfNode {
  if (site.upstreams.length === 0) throw new Error('a site needs at least one upstream');
  return block('upstream', [word(upstream)], [
    ...site.upstreams.map((u) => directive('server', upstreamAddress(u.host, u.port), word(`weight=${int(u.weight, 1, 100, 'upstream weight').text}`))),
    directive('keepalive', word('16')),
  ]);
}

/** What every proxying location repeats: add_header in a location cancels inheritance, so each location carries the site's headers. */
function proxyLocation(site: SiteSpec, upstream: string, cacheZone: string, caching: 'cache' | 'bypass' | 'none', cacheVersion: string): ConfNode[] {
  const nodes: ConfNode[] = [directive('proxy_pass', word(`http://${upstream}`))];
  if (caching === 'none') {
    nodes.push(directive('proxy_cache', word('off')));
  } else {
    nodes.push(directive('proxy_cache', word(cacheZone)));
    nodes.push(directive('proxy_cache_key', word(`${cacheVersion}:$scheme$proxy_host$request_uri`)));
    nodes.push(directive('proxy_cache_valid', word('200'), word('301'), word('302'), word(`${int(site.cache.ttlSeconds, 1, 31_536_000, 'cache TTL').text}s`)));
    if (caching === 'bypass') nodes.push(directive('proxy_cache_bypass', word('1')), directive('proxy_no_cache', word('1')));
    nodes.push(directive('add_header', str(CACHE_STATUS_HEADER), word('$upstream_cache_status'), word('always')));
  }
  for (const [name, value] of Object.entries(site.headers)) nodes.push(directive('add_header', headerName(name), scriptStr(value), word('always')));
  return nodes;
}

/** Server-level proxy settings, inherited by every location (none of them sets proxy_set_header). */
const PROXY_DEFAULTS: ConfNode[] = [
  directive('proxy_http_version', word('1.1')),
  // Empty Connection header: lets the upstream keepalive pool reuse connections.
  directive('proxy_set_header', word('Connection'), str('')),
  directive('proxy_set_header', word('Host'), word('$host')),
  directive('proxy_set_header', word('X-Real-IP'), word('$remote_addr')),
  directive('proxy_set_header', word('X-Forwarded-For'), word('$proxy_add_x_forwarded_for')),
  directive('proxy_set_header', word('X-Forwarded-Proto'), word('$scheme')),
];

function accessRules(site: SiteSpec, ctx: SiteRenderContext): ConfNode[] {
  const nodes: ConfNode[] = [];
  // First match wins: denials before allowances, and an allow list closes everything else.
  for (const range of site.access.deny) nodes.push(directive('deny', cidr(range)));
  for (const range of site.access.allow) nodes.push(directive('allow', cidr(range)));
  if (site.access.allow.length > 0) nodes.push(directive('deny', word('all')));
  if (site.access.blockedCountries.length > 0) {
    if (!ctx.geoip) throw new Error('country blocking needs a GeoIP country database on this node');
    const codes = site.access.blockedCountries.map((code) => regexLiteral(countryCode(code)));
    nodes.push(block('if', [word('($geoip_country_code'), word('~'), str(`^(?:${codes.join('|')})$`), word(')')], [directive('return', word('403'))]));
  }
  return nodes;
}

function listens(ctx: SiteRenderContext): ConfNode[] {
  const nodes = [directive('listen', word(`${ctx.address}:${int(ctx.httpPort, 1, 65_535, 'HTTP port').text}`))];
  if (ctx.certificate) {
    nodes.push(directive('listen', word(`${ctx.address}:${int(ctx.httpsPort, 1, 65_535, 'HTTPS port').text}`), word('ssl')));
    nodes.push(directive('ssl_certificate', str(ctx.certificate.certPath)), directive('ssl_certificate_key', str(ctx.certificate.keyPath)));
  }
  return nodes;
}

/** HTTP-01 tokens are files in one directory shared by every site, open to everyone: a CA validates from anywhere, so access rules and the WAF stay out. */
function acmeLocation(ctx: SiteRenderContext): ConfNode {
  return block('location', [word('^~'), str('/.well-known/acme-challenge/')], [
    directive('alias', str(`${ctx.acmeDir}/`)),
    directive('default_type', word('text/plain')),
    directive('modsecurity', word('off')),
    directive('allow', word('all')),
  ]);
}

function siteLocations(site: SiteSpec, upstream: string, cacheZone: string, cacheVersion: string): ConfNode[] {
  if (site.blocked) {
    return [
      block('location', [str('/')], [
        directive('default_type', word('text/html')),
        directive('add_header', str(BLOCKED_HEADER), str('1'), word('always')),
        directive('return', int(BLOCKED_STATUS, 100, 599, 'status'), scriptStr(BLOCKED_BODY)),
      ]),
    ];
  }
  const caching = site.cache.enabled ? 'cache' : 'none';
  const nodes = [block('location', [str('/')], proxyLocation(site, upstream, cacheZone, caching, cacheVersion))];
  if (site.cache.enabled) {
    for (const prefix of site.cache.bypass) nodes.push(block('location', [word('^~'), pathPrefix(prefix)], proxyLocation(site, upstream, cacheZone, 'bypass', cacheVersion)));
  }
  return nodes;
}

export function renderSite(site: SiteSpec, ctx: SiteRenderContext): ConfNode[] {
  const id = siteIdOf(site.siteId);
  const { upstream, cacheZone, rateZone, cacheVersion } = names(id);
  const serverNames: Token[] = [site.domain, ...site.aliases].map((name) => str(hostnameOf(name)));
  const nodes: ConfNode[] = [comment(`site ${id} version ${int(site.version, 0, Number.MAX_SAFE_INTEGER, 'version').text}`)];
  if (!site.blocked) nodes.push(upstreamBlock(site, upstream));
  if (site.cache.enabled && !site.blocked) {
    nodes.push(cacheKeyMap(site, cacheVersion));
    nodes.push(directive('proxy_cache_path', str(ctx.cacheDir), word('levels=1:2'), word(`keys_zone=${cacheZone}:1m`), word('max_size=256m'), word('inactive=1d'), word('use_temp_path=off')));
  }
  if (site.rateLimit) {
    nodes.push(directive('limit_req_zone', word('$binary_remote_addr'), word(`zone=${rateZone}:1m`), word(`rate=${int(site.rateLimit.requestsPerSecond, 1, 100_000, 'requests per second').text}r/s`)));
  }
  const waf = wafRules(site.waf.level);
  const server: ConfNode[] = [
    // First, before any rule can answer: every logged line names the site nginx chose.
    directive('set', word(SITE_VARIABLE), str(id)),
    directive('access_log', str(ctx.trafficLog), word(TRAFFIC_LOG_FORMAT)),
    // A server's own access_log replaces the http-level one: name it again so it keeps every request.
    directive('access_log', str(ctx.accessLog)),
    ...listens(ctx),
    directive('server_name', ...serverNames),
    directive('modsecurity', word(waf.modsecurity ? 'on' : 'off')),
    // What waf/paranoia.conf keys the site's level on (see waf.ts for why not the Host header).
    ...(waf.modsecurity ? [directive('modsecurity_transaction_id', word(`${transactionIdPrefix(id)}$request_id`))] : []),
    ...accessRules(site, ctx),
  ];
  if (site.rateLimit) {
    server.push(directive('limit_req', word(`zone=${rateZone}`), word(`burst=${int(site.rateLimit.burst, 0, 100_000, 'burst').text}`), word('nodelay')));
    server.push(directive('limit_req_status', word('429')));
  }
  if (!site.blocked) server.push(...PROXY_DEFAULTS);
  server.push(acmeLocation(ctx), ...siteLocations(site, upstream, cacheZone, cacheVersion));
  nodes.push(block('server', [], server));
  return nodes;
}
