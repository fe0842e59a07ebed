/**
 * Validation of a site as a client sends it (create and update), into the
 * SiteSettings the log records and SiteSpec carries to the edge. Strict: an
 * unknown field, a wrong type or a value outside its grammar is refused, never
 * dropped or guessed, and every refusal is DomainError `invalid_site` (400)
 * whose `field` names the value at fault (`upstreams[1].port`).
 *
 * Normalisation happens here once, so equal settings are written equally:
 * hostnames lower-case punycode (IDN through node:url's domainToASCII), IPs
 * and CIDRs canonical (cidr.ts), lists without duplicates. The edge drivers
 * still render every value by typed code with escaping; this is the first
 * wall, not the only one.
 */
import { domainToASCII } from 'node:url';
import { DomainError } from '../decider.js';
import { MAX_NODE_LABELS, NODE_LABEL } from '../fleet/nodes.js';
import { canonicalCidr, canonicalIp } from './cidr.js';
import { TLS_MODES, WAF_LEVELS, type Upstream, type WafLevel } from './model.js';
import type { SiteSettings } from './site-settings.js';

export const LIMITS = {
  aliases: 32,
  upstreams: 32,
  bypass: 32,
  /** URIs per purge request. */
  purgePaths: 100,
  pathLength: 1024,
  cidrs: 256,
  countries: 256,
  headers: 32,
  headerValueLength: 4096,
  ttlSeconds: 31_536_000,
  requestsPerSecond: 100_000,
  burst: 100_000,
} as const;

/**
 * Response headers a site may not set: hop-by-hop and framing fields (they
 * describe one connection, and a wrong one desynchronises it), and the ones
 * that carry credentials or sessions.
 */
export const REFUSED_HEADERS: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'upgrade',
  'set-cookie',
  'cookie',
  'authorization',
  'proxy-authorization',
  'proxy-authenticate',
]);

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
/** What an ASCII character of a name may be before conversion: domainToASCII would otherwise percent-decode or map it. */
const NAME_ASCII = /^(?:[A-Za-z0-9.*-]|[^\u0000-\u007f])+$/;
/** RFC 9110 §5.6.2 token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** RFC 9110 §5.5 field-value: visible ASCII, spaces and tabs inside, none at either end. No CR, LF or other controls; no obs-text. */
const FIELD_VALUE = /^[\x21-\x7e](?:[\x20-\x7e\t]*[\x21-\x7e])?$/;
/** A URI path prefix: `/`, then visible ASCII (no spaces, no controls). */
const PATH = /^\/[\x21-\x7e]*$/;
const COUNTRY = /^[A-Z]{2}$/;
const REGIONS = new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });

function invalid(field: string, rule: string): never {
  throw new DomainError('invalid_site', `${field}: ${rule}`, { field });
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An object with only `known` keys; the error names the first unknown one. */
function record(field: string, value: unknown, known: readonly string[]): Record<string, unknown> {
  if (!isRecord(value)) invalid(field || '(body)', 'must be an object');
  for (const key of Object.keys(value)) if (!known.includes(key)) invalid(field ? `${field}.${key}` : key, 'is not a known field');
  return value;
}

function list(field: string, value: unknown, max: number, { optional = true, min = 0 } = {}): unknown[] {
  if (value === undefined && optional) return [];
  if (!Array.isArray(value)) invalid(field, 'must be a list');
  if (value.length < min || value.length > max) invalid(field, min > 0 ? `must have ${min}-${max} entries` : `must have at most ${max} entries`);
  return value;
}

function integer(field: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) invalid(field, `must be an integer ${min}-${max}`);
  return value;
}

function oneOf<T extends string>(field: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) invalid(field, `must be one of ${allowed.join(', ')}`);
  return value as T;
}

/** Refuses the second occurrence of an equal value (after normalisation). */
function unique(field: string, values: string[], key = (v: string) => v): string[] {
  const seen = new Set<string>();
  values.forEach((v, i) => {
    if (seen.has(key(v))) invalid(`${field}[${i}]`, `repeats "${v}"`);
    seen.add(key(v));
  });
  return values;
}

function labelsValid(name: string, minLabels: number): boolean {
  const labels = name.split('.');
  // An all-digit last label would make the name an IPv4 address in disguise (RFC 3696 §2).
  return name.length <= 253 && labels.length >= minLabels && labels.every((l) => LABEL.test(l)) && !/^\d+$/.test(labels[labels.length - 1]!);
}

/**
 * A DNS name in lower-case punycode: labels of 1-63 a-z, 0-9 and '-' (not at
 * either end), at most 253 characters. Site names need two labels and may
 * start with a `*.` wildcard; upstream hosts may be one label (`backend`).
 */
export function hostname(field: string, value: unknown, opts: { wildcard: boolean; minLabels: number }): string {
  const rule = `must be a hostname (labels of a-z, 0-9 and '-', at least ${opts.minLabels}, at most 253 characters${opts.wildcard ? ", optionally after a leading '*.'" : ''})`;
  if (typeof value !== 'string' || value.length === 0 || value.length > 253 || !NAME_ASCII.test(value)) invalid(field, rule);
  const wild = opts.wildcard && value.startsWith('*.');
  const rest = wild ? value.slice(2) : value;
  if (rest.includes('*')) invalid(field, `${rule}; '*' only as a leading '*.'`);
  const ascii = domainToASCII(rest);
  if (!ascii || !labelsValid(ascii, opts.minLabels) || (wild && ascii.length + 2 > 253)) invalid(field, rule);
  return wild ? `*.${ascii}` : ascii;
}

const siteName = (field: string, value: unknown) => hostname(field, value, { wildcard: true, minLabels: 2 });

function upstream(field: string, value: unknown): Upstream {
  const u = record(field, value, ['host', 'port', 'weight']);
  const raw = u['host'];
  // IPv6 may come in brackets, as in a URL; a bracketed value must be an address.
  const ip = typeof raw === 'string' ? canonicalIp(raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw) : null;
  const host = ip ?? hostname(`${field}.host`, raw, { wildcard: false, minLabels: 1 });
  return { host, port: integer(`${field}.port`, u['port'], 1, 65_535), weight: u['weight'] === undefined ? 1 : integer(`${field}.weight`, u['weight'], 1, 100) };
}

function upstreams(value: unknown): Upstream[] {
  const all = list('upstreams', value, LIMITS.upstreams, { optional: false, min: 1 }).map((u, i) => upstream(`upstreams[${i}]`, u));
  unique('upstreams', all.map((u) => `${u.host}:${u.port}`));
  return all;
}

function wafLevel(value: unknown): WafLevel {
  // 1-4 may come as numbers: the levels are CRS paranoia levels, and clients write them as such.
  const level = typeof value === 'number' && Number.isInteger(value) ? String(value) : value;
  return oneOf('waf.level', level, WAF_LEVELS);
}

/** Paths (bypass prefixes, purged URIs): `/`, then visible ASCII, at most LIMITS.pathLength. */
function paths(field: string, value: unknown, max: number): string[] {
  return list(field, value, max).map((p, i) => {
    if (typeof p !== 'string' || p.length > LIMITS.pathLength || !PATH.test(p)) invalid(`${field}[${i}]`, `must be a path starting with '/', of visible ASCII characters (no spaces), at most ${LIMITS.pathLength}`);
    return p;
  });
}

/** The body of POST /v1/sites/:id/purge: `{paths?}`, exact request URIs (none: the whole site), unique. */
export function validatePurge(input: unknown): string[] {
  const body = record('', input ?? {}, ['paths']);
  return unique('paths', paths('paths', body['paths'], LIMITS.purgePaths));
}

function cache(value: unknown): SiteSettings['cache'] {
  const c = record('cache', value, ['enabled', 'ttlSeconds', 'bypass']);
  if (typeof c['enabled'] !== 'boolean') invalid('cache.enabled', 'must be true or false');
  const bypass = paths('cache.bypass', c['bypass'], LIMITS.bypass);
  return { enabled: c['enabled'], ttlSeconds: integer('cache.ttlSeconds', c['ttlSeconds'], 1, LIMITS.ttlSeconds), bypass: unique('cache.bypass', bypass) };
}

function cidrs(field: string, value: unknown): string[] {
  const all = list(field, value, LIMITS.cidrs).map((c, i) => {
    const canonical = typeof c === 'string' ? canonicalCidr(c) : null;
    if (!canonical) invalid(`${field}[${i}]`, 'must be an IPv4 or IPv6 address or CIDR (address/prefix)');
    return canonical;
  });
  return unique(field, all);
}

function countries(value: unknown): string[] {
  const all = list('access.blockedCountries', value, LIMITS.countries).map((c, i) => {
    if (typeof c !== 'string' || !COUNTRY.test(c) || c === 'ZZ' || !REGIONS.of(c)) invalid(`access.blockedCountries[${i}]`, 'must be an ISO 3166-1 alpha-2 code in upper case, such as DE');
    return c;
  });
  return unique('access.blockedCountries', all);
}

function access(value: unknown): SiteSettings['access'] {
  if (value === undefined) return { allow: [], deny: [], blockedCountries: [] };
  const a = record('access', value, ['allow', 'deny', 'blockedCountries']);
  return { allow: cidrs('access.allow', a['allow']), deny: cidrs('access.deny', a['deny']), blockedCountries: countries(a['blockedCountries']) };
}

function rateLimit(value: unknown): SiteSettings['rateLimit'] {
  if (value === undefined || value === null) return null;
  const r = record('rateLimit', value, ['requestsPerSecond', 'burst']);
  return { requestsPerSecond: integer('rateLimit.requestsPerSecond', r['requestsPerSecond'], 1, LIMITS.requestsPerSecond), burst: integer('rateLimit.burst', r['burst'], 0, LIMITS.burst) };
}

function headers(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (!isRecord(value)) invalid('headers', 'must be an object of header names to values');
  const entries = Object.entries(value);
  if (entries.length > LIMITS.headers) invalid('headers', `must have at most ${LIMITS.headers} entries`);
  const seen = new Set<string>();
  for (const [name, v] of entries) {
    if (!TOKEN.test(name) || name.length > 256) invalid('headers', 'a header name must be an RFC 9110 token (letters, digits and !#$%&\'*+.^_`|~-), at most 256 characters');
    const lower = name.toLowerCase();
    if (REFUSED_HEADERS.has(lower)) invalid(`headers.${name}`, 'is a hop-by-hop, framing or credential header a site may not set');
    if (seen.has(lower)) invalid(`headers.${name}`, 'repeats a header name (names are case-insensitive)');
    seen.add(lower);
    if (typeof v !== 'string' || v.length > LIMITS.headerValueLength || !FIELD_VALUE.test(v)) {
      invalid(`headers.${name}`, `must be visible ASCII characters, spaces and tabs (not at either end; no CR or LF), 1-${LIMITS.headerValueLength}`);
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

function nodeLabels(value: unknown): string[] {
  const all = list('nodeLabels', value, MAX_NODE_LABELS, { optional: false }).map((l, i) => {
    if (typeof l !== 'string' || !NODE_LABEL.test(l)) invalid(`nodeLabels[${i}]`, "must be a fleet label: 1-64 of a-z, 0-9, '-' and '_', starting with a letter or digit");
    return l;
  });
  // Sorted and unique, as node labels are: order carries no meaning.
  return [...new Set(all)].sort();
}

const FIELDS = ['domain', 'aliases', 'upstreams', 'tls', 'waf', 'cache', 'access', 'rateLimit', 'headers', 'nodeLabels'] as const;

/** A site as a client sent it, checked and normalised; throws `invalid_site` naming the field. */
export function validateSite(input: unknown): SiteSettings {
  const site = record('', input, FIELDS);
  const domain = siteName('domain', site['domain']);
  const aliases = list('aliases', site['aliases'], LIMITS.aliases).map((a, i) => siteName(`aliases[${i}]`, a));
  aliases.forEach((a, i) => {
    if (a === domain) invalid(`aliases[${i}]`, 'is the domain itself');
  });
  unique('aliases', aliases);
  const tls = record('tls', site['tls'], ['mode']);
  const waf = record('waf', site['waf'], ['level']);
  return {
    domain,
    aliases,
    upstreams: upstreams(site['upstreams']),
    tls: { mode: oneOf('tls.mode', tls['mode'], TLS_MODES) },
    waf: { level: wafLevel(waf['level']) },
    cache: cache(site['cache']),
    access: access(site['access']),
    rateLimit: rateLimit(site['rateLimit']),
    headers: headers(site['headers']),
    nodeLabels: nodeLabels(site['nodeLabels']),
  };
}
