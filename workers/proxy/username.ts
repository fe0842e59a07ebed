/**
 * The proxy username grammar: what a customer types as the username of an
 * HTTP, HTTPS or SOCKS5 proxy carries, beside who they are, where they want
 * to leave from and whether to keep one egress for a while (the convention of
 * residential-proxy networks):
 *
 *   <username>[-country-<iso2>][-city-<name>][-session-<id>][-sessttl-<minutes>]
 *
 * - `username`: the account's proxy username (`u` and 32 hex digits); no `-`.
 * - `country`: ISO 3166-1 alpha-2, any case (`de`, `DE`).
 * - `city`: 1–40 of `a-z`, `0-9`, `_` (`_` for a space: `new_york`), any case.
 * - `session`: 1–64 of `A-Z`, `a-z`, `0-9`; pins the egress for its TTL.
 * - `sessttl`: minutes, 1–1440; only with a session (default 10).
 *
 * Each parameter at most once, in this order. Pure: no lookups here.
 */

export interface ProxyUsername {
  username: string;
  /** Upper case. */
  country?: string;
  /** Lower case, `_` for spaces. */
  city?: string;
  session?: string;
  /** Set whenever `session` is. */
  sessionTtlMinutes?: number;
}

export const DEFAULT_SESSION_TTL_MINUTES = 10;
export const MAX_SESSION_TTL_MINUTES = 1_440;

export class UsernameSyntaxError extends Error {
  override readonly name = 'UsernameSyntaxError';
}

const KEYS = ['country', 'city', 'session', 'sessttl'] as const;
type Key = (typeof KEYS)[number];
const USERNAME = /^[A-Za-z0-9_.]{1,64}$/;
const CHECKS: Record<Key, { pattern: RegExp; what: string }> = {
  country: { pattern: /^[A-Za-z]{2}$/, what: 'an ISO 3166-1 alpha-2 code such as de' },
  city: { pattern: /^[A-Za-z0-9_]{1,40}$/, what: '1-40 of a-z, 0-9 and _ (for a space)' },
  session: { pattern: /^[A-Za-z0-9]{1,64}$/, what: '1-64 of A-Z, a-z and 0-9' },
  sessttl: { pattern: /^[1-9]\d{0,3}$/, what: `whole minutes, 1 to ${MAX_SESSION_TTL_MINUTES}` },
};

/** Parses a proxy username; throws UsernameSyntaxError naming the part that is wrong. */
export function parseProxyUsername(raw: string): ProxyUsername {
  const parts = raw.split('-');
  const username = parts[0] ?? '';
  if (!USERNAME.test(username)) throw new UsernameSyntaxError('username: must be your proxy username, before any -parameter');
  const values = new Map<Key, string>();
  let last = -1;
  for (let i = 1; i < parts.length; i += 2) {
    const key = parts[i] as Key;
    const at = KEYS.indexOf(key);
    if (at < 0) throw new UsernameSyntaxError(`${parts[i]}: not a parameter (country, city, session, sessttl)`);
    if (at <= last) throw new UsernameSyntaxError(`${key}: given twice or out of order (country, city, session, sessttl)`);
    last = at;
    const value = parts[i + 1];
    if (value === undefined || !CHECKS[key].pattern.test(value)) throw new UsernameSyntaxError(`${key}: must be ${CHECKS[key].what}`);
    values.set(key, value);
  }
  const result: ProxyUsername = { username };
  const country = values.get('country');
  if (country) result.country = country.toUpperCase();
  const city = values.get('city');
  if (city) result.city = city.toLowerCase();
  const session = values.get('session');
  const ttl = values.get('sessttl');
  if (ttl !== undefined && session === undefined) throw new UsernameSyntaxError('sessttl: only with a session');
  if (session !== undefined) {
    const minutes = ttl === undefined ? DEFAULT_SESSION_TTL_MINUTES : Number(ttl);
    if (minutes > MAX_SESSION_TTL_MINUTES) throw new UsernameSyntaxError(`sessttl: must be ${CHECKS.sessttl.what}`);
    result.session = session;
    result.sessionTtlMinutes = minutes;
  }
  return result;
}

/** A city as the grammar writes it, from a node's registered city (`Frankfurt am Main` → `frankfurt_am_main`). */
export function cityToken(city: string): string {
  return city.trim().toLowerCase().replace(/\s+/g, '_');
}
