/**
 * Clash.Meta (mihomo) profile: `proxies`, one `select` group listing them,
 * and a final rule sending everything through that group. Field names from
 * wiki.metacubex.one (config/proxies/vless, trojan, http, socks). Written with
 * the `yaml` package, never by hand, so names and passwords are quoted right.
 */
import { stringify } from 'yaml';
import { GROUP_NAME, type Endpoint } from './endpoint.js';

type Server = { name: string; server: string; port: number };
type TlsExtras = { 'client-fingerprint'?: string; 'reality-opts'?: { 'public-key': string; 'short-id': string } };

export type ClashProxy =
  | (Server & {
      type: 'vless';
      uuid: string;
      network: 'tcp';
      udp: boolean;
      tls: boolean;
      servername?: string;
      flow?: string;
    } & TlsExtras)
  | (Server & { type: 'trojan'; password: string; udp: boolean; sni?: string } & TlsExtras)
  | (Server & { type: 'http'; username: string; password: string })
  | (Server & { type: 'socks5'; username: string; password: string; udp: boolean });

export type ClashProfile = {
  proxies: ClashProxy[];
  'proxy-groups': { name: string; type: 'select'; proxies: string[] }[];
  rules: string[];
};

/** TLS fields shared by vless and trojan; mihomo calls the SNI `servername` on vless and `sni` on trojan. */
function tlsFields(endpoint: Endpoint): { serverName?: string; fields: TlsExtras } {
  const s = endpoint.security;
  switch (s.type) {
    case 'none':
      return { fields: {} };
    case 'tls':
      return { ...(s.serverName ? { serverName: s.serverName } : {}), fields: s.fingerprint ? { 'client-fingerprint': s.fingerprint } : {} };
    case 'reality':
      return {
        serverName: s.serverName,
        fields: { 'client-fingerprint': s.fingerprint, 'reality-opts': { 'public-key': s.publicKey, 'short-id': s.shortId } },
      };
  }
}

function proxy(endpoint: Endpoint): ClashProxy {
  const server: Server = { name: endpoint.name, server: endpoint.host, port: endpoint.port };
  const c = endpoint.credentials;
  const { serverName, fields } = tlsFields(endpoint);
  switch (c.protocol) {
    case 'vless':
      return {
        ...server,
        type: 'vless',
        uuid: c.uuid,
        network: 'tcp',
        udp: true,
        tls: endpoint.security.type !== 'none',
        ...(serverName ? { servername: serverName } : {}),
        ...(endpoint.flow ? { flow: endpoint.flow } : {}),
        ...fields,
      };
    case 'trojan':
      return { ...server, type: 'trojan', password: c.password, udp: true, ...(serverName ? { sni: serverName } : {}), ...fields };
    case 'http':
      return { ...server, type: 'http', username: c.username, password: c.password };
    case 'socks':
      return { ...server, type: 'socks5', username: c.username, password: c.password, udp: true };
  }
}

export function clashProfile(endpoints: readonly Endpoint[]): ClashProfile {
  const proxies = endpoints.map(proxy);
  // mihomo refuses an empty group; with nothing to offer, traffic is refused rather than sent around the proxy.
  const members = proxies.length > 0 ? proxies.map((p) => p.name) : ['REJECT'];
  return {
    proxies,
    'proxy-groups': [{ name: GROUP_NAME, type: 'select', proxies: members }],
    rules: [`MATCH,${GROUP_NAME}`],
  };
}

/**
 * The Clash.Meta profile as YAML. Written under YAML 1.1 rules so that strings
 * a 1.1 reader would take for something else ("on", "12:30") are quoted; the
 * output reads the same under 1.2. No line folding, which some clients mis-read.
 */
export function clashSubscription(endpoints: readonly Endpoint[]): string {
  return stringify(clashProfile(endpoints), { lineWidth: 0, version: '1.1' });
}
