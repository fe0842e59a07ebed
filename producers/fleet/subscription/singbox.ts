/**
 * sing-box client outbounds (sing-box.sagernet.org, configuration/outbound/*
 * and shared/tls): one outbound per endpoint plus a selector listing them.
 * The selector comes first because sing-box routes through the first
 * outbound when the client's route sets no `final`.
 */
import { GROUP_NAME, type Endpoint } from './endpoint.js';

export type SingboxTls = {
  enabled: true;
  server_name?: string;
  utls?: { enabled: true; fingerprint: string };
  reality?: { enabled: true; public_key: string; short_id: string };
};

type Server = { tag: string; server: string; server_port: number };

export type SingboxOutbound =
  | { type: 'selector'; tag: string; outbounds: string[]; default: string }
  | (Server & { type: 'vless'; uuid: string; flow?: string; tls?: SingboxTls })
  | (Server & { type: 'trojan'; password: string; tls: SingboxTls })
  | (Server & { type: 'http'; username: string; password: string })
  | (Server & { type: 'socks'; version: '5'; username: string; password: string });

export type SingboxSubscription = { outbounds: SingboxOutbound[] };

function tls(endpoint: Endpoint): SingboxTls | undefined {
  const s = endpoint.security;
  switch (s.type) {
    case 'none':
      return undefined;
    case 'tls':
      return {
        enabled: true,
        ...(s.serverName ? { server_name: s.serverName } : {}),
        ...(s.fingerprint ? { utls: { enabled: true, fingerprint: s.fingerprint } } : {}),
      };
    case 'reality':
      // sing-box refuses REALITY without uTLS, so the fingerprint is always set.
      return {
        enabled: true,
        server_name: s.serverName,
        utls: { enabled: true, fingerprint: s.fingerprint },
        reality: { enabled: true, public_key: s.publicKey, short_id: s.shortId },
      };
  }
}

function outbound(endpoint: Endpoint): SingboxOutbound {
  const server: Server = { tag: endpoint.name, server: endpoint.host, server_port: endpoint.port };
  const c = endpoint.credentials;
  const t = tls(endpoint);
  switch (c.protocol) {
    case 'vless':
      return { ...server, type: 'vless', uuid: c.uuid, ...(endpoint.flow ? { flow: endpoint.flow } : {}), ...(t ? { tls: t } : {}) };
    case 'trojan':
      return { ...server, type: 'trojan', password: c.password, tls: t ?? { enabled: true } };
    case 'http':
      return { ...server, type: 'http', username: c.username, password: c.password };
    case 'socks':
      return { ...server, type: 'socks', version: '5', username: c.username, password: c.password };
  }
}

/** `{ outbounds: [selector, ...endpoints] }`; no selector when there is nothing to select (sing-box refuses an empty one). */
export function singboxSubscription(endpoints: readonly Endpoint[]): SingboxSubscription {
  const outbounds = endpoints.map(outbound);
  if (outbounds.length === 0) return { outbounds };
  const tags = endpoints.map((e) => e.name);
  return { outbounds: [{ type: 'selector', tag: GROUP_NAME, outbounds: tags, default: tags[0]! }, ...outbounds] };
}
