/**
 * The only way a string reaches a rendered nginx or ModSecurity file: as a
 * token built here. nginx's tokenizer splits on whitespace and `;{}` and
 * unquotes `"…"` (only `\"` and `\\` are escapes in it); inside directives
 * whose values are scripts (add_header, return) a `$` starts a variable. So a
 * user string is either checked against a grammar that cannot hold any of
 * those (names, hostnames, CIDRs, numbers) or quoted so the tokenizer sees
 * exactly one token with exactly that text. Control characters are refused
 * everywhere: a newline inside a quoted token is legal for nginx but is how
 * a rendered file would be made to lie to a reader.
 */
import { isIP } from 'node:net';

/** One argument of a rendered directive; only this module makes them. */
export interface Token {
  readonly text: string;
}

export class RenderError extends Error {
  override readonly name = 'RenderError';
}

const CONTROL = /[\u0000-\u001f\u007f]/;

function refuseControl(what: string, value: string): void {
  if (CONTROL.test(value)) throw new RenderError(`${what} contains a control character`);
}

function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** A literal string (no variables are expanded where it is used): quoted, `\` and `"` escaped. */
export function str(value: string): Token {
  refuseControl('a string', value);
  return { text: quoted(value) };
}

/**
 * A literal string for a directive whose value nginx compiles as a script
 * (add_header, return): as str(), and every `$` becomes `${dollar}`, a
 * variable the main configuration defines as a literal `$` (nginx has no
 * escape for `$` in scripts).
 */
export function scriptStr(value: string): Token {
  refuseControl('a string', value);
  return { text: quoted(value).replace(/\$/g, '${dollar}') };
}

/** A word of our own making (directive keywords, flags, numbers we computed): checked, never quoted. */
export function word(value: string): Token {
  if (!/^[A-Za-z0-9_.:/=^~*@%+$()-]+$/.test(value)) throw new RenderError(`not a plain word: ${JSON.stringify(value)}`);
  return { text: value };
}

export function int(value: number, min: number, max: number, what: string): Token {
  if (!Number.isSafeInteger(value) || value < min || value > max) throw new RenderError(`${what} must be an integer in ${min}-${max}`);
  return { text: String(value) };
}

// ---------------------------------------------------------------------------
// Grammars: values that become part of names, paths or unquoted tokens.

/** Site ids name files, upstreams and shared-memory zones. */
export function siteIdOf(value: string): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(value)) throw new RenderError(`site id ${JSON.stringify(value)} is not [A-Za-z0-9_-]{1,64}`);
  return value;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** A lower-case (punycode) DNS name: server_name treats `~`, `*` and `.`-prefixes specially, so nothing else passes. */
export function hostnameOf(value: string): string {
  if (value.length > 253 || !value.split('.').every((label) => LABEL.test(label))) {
    throw new RenderError(`${JSON.stringify(value)} is not a lower-case hostname`);
  }
  return value;
}

/** An upstream address: a hostname or an IP literal, with its port. */
export function upstreamAddress(host: string, port: number): Token {
  int(port, 1, 65_535, 'upstream port');
  const version = isIP(host);
  const shown = version === 6 ? `[${host}]` : version === 4 ? host : hostnameOf(host);
  return str(`${shown}:${port}`);
}

/** An IPv4/IPv6 address or CIDR, for allow/deny. */
export function cidr(value: string): Token {
  const [address, bits, extra] = value.split('/');
  const version = address !== undefined ? isIP(address) : 0;
  if (version === 0 || extra !== undefined) throw new RenderError(`${JSON.stringify(value)} is not an IP address or CIDR`);
  if (bits !== undefined) int(/^\d{1,3}$/.test(bits) ? Number(bits) : -1, 0, version === 4 ? 32 : 128, 'CIDR prefix length');
  return word(value);
}

/** An RFC 9110 field name (token). */
export function headerName(value: string): Token {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(value)) throw new RenderError(`${JSON.stringify(value)} is not an HTTP field name`);
  return str(value);
}

/** A URI path prefix for a location: starts with `/`, no whitespace. */
export function pathPrefix(value: string): Token {
  if (!value.startsWith('/') || /\s/.test(value)) throw new RenderError(`${JSON.stringify(value)} is not a URI path`);
  return str(value);
}

/** An ISO 3166-1 alpha-2 country code, as the GeoIP module reports it. */
export function countryCode(value: string): string {
  const upper = value.toUpperCase();
  if (!/^[A-Z]{2}$/.test(upper)) throw new RenderError(`${JSON.stringify(value)} is not an ISO 3166-1 alpha-2 code`);
  return upper;
}

/**
 * A regular-expression literal matching exactly `value`, to sit inside a
 * quoted token (nginx `~`, ModSecurity `@rx`). The tokenizer unescapes a
 * doubled backslash before the regex engine sees the text, so a value holding a backslash or `"` would
 * need two layers of escaping: it is refused instead (callers pass hostnames
 * and country codes, which never hold either).
 */
export function regexLiteral(value: string): string {
  refuseControl('a pattern', value);
  if (/[\\"]/.test(value)) throw new RenderError('a pattern may not contain a backslash or a double quote');
  return value.replace(/[\^$.*+?()[\]{}|/]/g, (c) => `\\${c}`);
}
