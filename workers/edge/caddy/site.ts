/**
 * One site as Caddy JSON: a route on the node's server matched by the site's
 * host names, whose subroute serves ACME tokens, applies the access rules, and
 * then either answers the blocked page or proxies. JSON is structured data, so
 * no user string can change the configuration's shape; what remains is Caddy's
 * placeholder syntax (`{env.X}` is expanded in header values and response
 * bodies), which literal() escapes, and the grammars of ../nginx/escape.ts for
 * what reaches matchers and dial addresses.
 */
import { isIP } from 'node:net';
import type { SiteSpec } from '../../../producers/edge/model.js';
import { cidr, headerName, hostnameOf, int, RenderError, siteIdOf, str } from '../nginx/escape.js';
import { BLOCKED_BODY, BLOCKED_HEADER, BLOCKED_STATUS } from '../nginx/site.js';

/** A Caddy JSON value: the renderer builds plain objects, Caddy's admin API takes them as they are. */
export type CaddyJson = string | number | boolean | null | CaddyJson[] | { [key: string]: CaddyJson };
export type CaddyObject = { [key: string]: CaddyJson };

export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge';

/** The status nginx's `deny` answers; Caddy nodes answer the same. */
export const DENIED_STATUS = 403;

/**
 * A string Caddy's replacer leaves as it is: `\{` and `\}` are its escapes for
 * literal braces (a lone backslash stays a backslash, so nothing else needs
 * escaping). Control characters are refused, as in every nginx token.
 */
export function literal(value: string): string {
  str(value);
  return value.replace(/[{}]/g, (c) => `\\${c}`);
}

/**
 * What stock Caddy (Debian's 2.6.2, no plugins) cannot do that a site asks
 * for. Such a site is rejected on a Caddy node rather than served without the
 * protection or behaviour its settings promise.
 */
export function unsupportedOnCaddy(site: SiteSpec): string[] {
  const missing: string[] = [];
  if (site.waf.level !== 'off') missing.push(`waf level "${site.waf.level}" (stock Caddy has no ModSecurity)`);
  if (site.cache.enabled) missing.push('caching (stock Caddy has no proxy cache)');
  if (site.rateLimit !== null) missing.push('rate limits (stock Caddy has no rate-limit handler)');
  if (site.access.blockedCountries.length > 0) missing.push('country blocking (stock Caddy has no GeoIP matcher)');
  return missing;
}

/** `host:port` for Caddy's dialer; hostnames by their grammar, IPv6 in brackets. */
function dial(host: string, port: number): string {
  int(port, 1, 65_535, 'upstream port');
  const version = isIP(host);
  return `${version === 6 ? `[${host}]` : version === 4 ? host : hostnameOf(host)}:${port}`;
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * Caddy 2.6.2 has no weighted_round_robin policy (it arrived in 2.7), so a
 * weight is the number of times an upstream is listed under round_robin,
 * divided by the weights' greatest common divisor: the same shares as nginx's
 * weights, in a less smooth order.
 */
function weightedUpstreams(site: SiteSpec): CaddyJson[] {
  if (site.upstreams.length === 0) throw new RenderError('a site needs at least one upstream');
  const weights = site.upstreams.map((u) => Number(int(u.weight, 1, 100, 'upstream weight').text));
  const divisor = weights.reduce(gcd);
  return site.upstreams.flatMap((u, i) => Array.from({ length: (weights[i] ?? 1) / divisor }, () => ({ dial: dial(u.host, u.port) })));
}

function addHeaders(headers: Record<string, string>): CaddyObject {
  const add: CaddyObject = {};
  for (const [name, value] of Object.entries(headers)) {
    headerName(name);
    add[name] = [literal(value)];
  }
  return { handler: 'headers', response: { add } };
}

const deny = (match: CaddyObject): CaddyObject => ({ match: [match], handle: [{ handler: 'static_response', status_code: DENIED_STATUS }], terminal: true });

/** nginx's order: denied ranges first, then allowed ones, then (with an allow list) everything else denied. */
function accessRoutes(site: SiteSpec): CaddyObject[] {
  const ranges = (list: string[]): string[] => list.map((range) => cidr(range).text);
  const routes: CaddyObject[] = [];
  if (site.access.deny.length > 0) routes.push(deny({ remote_ip: { ranges: ranges(site.access.deny) } }));
  if (site.access.allow.length > 0) routes.push(deny({ not: [{ remote_ip: { ranges: ranges(site.access.allow) } }] }));
  return routes;
}

/** HTTP-01 tokens, one file per token in a directory every site shares, open to everyone (a CA validates from anywhere): before the access rules, without the site's headers. */
function acmeRoute(acmeDir: string): CaddyObject {
  return {
    match: [{ path: [`${ACME_CHALLENGE_PREFIX}/*`] }],
    handle: [
      { handler: 'headers', response: { set: { 'Content-Type': ['text/plain'] } } },
      { handler: 'rewrite', strip_path_prefix: ACME_CHALLENGE_PREFIX },
      { handler: 'file_server', root: literal(acmeDir) },
    ],
    terminal: true,
  };
}

/** What the site answers once access is granted: nginx's blocked page, or its upstreams. */
function serving(site: SiteSpec): CaddyObject[] {
  if (site.blocked) {
    return [
      { handler: 'headers', response: { set: { 'Content-Type': ['text/html'] } } },
      { handler: 'static_response', status_code: BLOCKED_STATUS, body: literal(BLOCKED_BODY) },
    ];
  }
  return [
    {
      handler: 'reverse_proxy',
      upstreams: weightedUpstreams(site),
      load_balancing: { selection_policy: { policy: 'round_robin' } },
      // As nginx's proxy_set_header: the name without a port, and the client's address.
      headers: { request: { set: { Host: ['{http.request.host}'], 'X-Real-IP': ['{http.request.remote.host}'] } } },
    },
  ];
}

/** The site's route on a server: matched by its names, terminal. */
export function siteRoute(site: SiteSpec, acmeDir: string): CaddyObject {
  siteIdOf(site.siteId);
  int(site.version, 0, Number.MAX_SAFE_INTEGER, 'version');
  const missing = unsupportedOnCaddy(site);
  if (missing.length > 0) throw new RenderError(`not supported on Caddy nodes: ${missing.join('; ')}`);
  const hosts = [site.domain, ...site.aliases].map(hostnameOf);
  // As nginx's add_header … always in `location /`: on every answer but the ACME tokens', denials included
  // (a blocked site's location carries only the blocked marker).
  const headers = site.blocked ? { [BLOCKED_HEADER]: '1' } : site.headers;
  const routes: CaddyObject[] = [acmeRoute(acmeDir), ...(Object.keys(headers).length > 0 ? [{ handle: [addHeaders(headers)] }] : []), ...accessRoutes(site), { handle: serving(site) }];
  return { match: [{ host: hosts }], handle: [{ handler: 'subroute', routes }], terminal: true };
}
