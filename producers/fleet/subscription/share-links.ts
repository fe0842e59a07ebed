/**
 * Share links in the de-facto format of Xray clients (v2rayN, v2rayNG,
 * Shadowrocket, Nekobox): the "VMessAEAD / VLESS share link" proposal
 * (XTLS/Xray-core issue #91, discussion #716) with REALITY's additions `pbk`,
 * `sid`, `fp`, `spx`; Trojan follows the same query fields (Trojan-Go's scheme).
 *
 *   vless://<uuid>@<host>:<port>?encryption=none&security=reality&sni=..&fp=..&pbk=..&sid=..&flow=..&type=tcp#<remark>
 *   trojan://<password>@<host>:<port>?security=tls&sni=..&type=tcp#<remark>
 *
 * Every value is escaped with encodeURIComponent, as the proposal requires
 * (URLSearchParams would write spaces as "+", which some clients keep).
 * HTTP and SOCKS have no link: clients do not import them from a link list.
 */
import { isIpv6, type Endpoint } from './endpoint.js';

type Param = readonly [key: string, value: string | undefined];

function authority(endpoint: Endpoint): string {
  return `${isIpv6(endpoint.host) ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;
}

function query(params: readonly Param[]): string {
  return params
    .filter((p): p is readonly [string, string] => p[1] !== undefined && p[1] !== '')
    .map(([key, value]) => `${key}=${encodeURIComponent(value)}`)
    .join('&');
}

/** sni/fp/pbk/sid in the proposal's order, after `security`. */
function securityParams(endpoint: Endpoint): Param[] {
  const s = endpoint.security;
  switch (s.type) {
    case 'none':
      return [['security', 'none']];
    case 'tls':
      return [['security', 'tls'], ['sni', s.serverName], ['fp', s.fingerprint]];
    case 'reality':
      return [['security', 'reality'], ['sni', s.serverName], ['fp', s.fingerprint], ['pbk', s.publicKey], ['sid', s.shortId]];
  }
}

function link(scheme: string, secret: string, endpoint: Endpoint, params: readonly Param[]): string {
  return `${scheme}://${encodeURIComponent(secret)}@${authority(endpoint)}?${query(params)}#${encodeURIComponent(endpoint.name)}`;
}

export function vlessLink(endpoint: Endpoint): string {
  if (endpoint.credentials.protocol !== 'vless') throw new Error(`${endpoint.kind} is not a VLESS endpoint`);
  return link('vless', endpoint.credentials.uuid, endpoint, [
    ['encryption', 'none'],
    ...securityParams(endpoint),
    ['flow', endpoint.flow],
    ['type', 'tcp'],
  ]);
}

export function trojanLink(endpoint: Endpoint): string {
  if (endpoint.credentials.protocol !== 'trojan') throw new Error(`${endpoint.kind} is not a Trojan endpoint`);
  return link('trojan', endpoint.credentials.password, endpoint, [...securityParams(endpoint), ['type', 'tcp']]);
}

/** The endpoint's share link, or null for kinds clients do not import from links (HTTP, SOCKS). */
export function shareLink(endpoint: Endpoint): string | null {
  switch (endpoint.credentials.protocol) {
    case 'vless':
      return vlessLink(endpoint);
    case 'trojan':
      return trojanLink(endpoint);
    case 'http':
    case 'socks':
      return null;
  }
}

/** Share links of every endpoint that has one, in order. */
export function shareLinks(endpoints: readonly Endpoint[]): string[] {
  return endpoints.map(shareLink).filter((l): l is string => l !== null);
}
