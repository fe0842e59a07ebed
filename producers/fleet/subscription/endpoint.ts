/**
 * What a client needs to connect to one profile on one node, with one user's
 * credentials: the single description that share links, sing-box and Clash
 * output are all built from. Built from the client-visible part of a profile
 * only; the fields are picked one by one (never spread), so a profile object
 * that still carries secrets cannot leak them into a subscription.
 */
import type { InboundProfile, NodeDescription, ProfileKind, ProxyUser } from '../model.js';

/** A profile as clients may see it: no `secrets`. */
export type ClientProfile = Pick<InboundProfile, 'profileId' | 'kind' | 'port' | 'settings'>;

/** The node as a subscription names it. */
export type SubscriptionNode = Pick<NodeDescription, 'address' | 'city'> & { name: string };

/** The selector (sing-box) / select group (Clash) listing every endpoint. */
export const GROUP_NAME = 'Relaygrid';

/** Clients imitate Chrome's TLS fingerprint on REALITY unless the profile says otherwise (v2rayN, sing-box, mihomo default too). */
export const DEFAULT_FINGERPRINT = 'chrome';

export type EndpointCredentials =
  | { protocol: 'vless'; uuid: string }
  | { protocol: 'trojan'; password: string }
  | { protocol: 'http' | 'socks'; username: string; password: string };

export type EndpointSecurity =
  | { type: 'none' }
  | { type: 'tls'; serverName?: string; fingerprint?: string }
  | { type: 'reality'; serverName: string; fingerprint: string; publicKey: string; shortId: string };

export interface Endpoint {
  /** Display name (link remark, Clash proxy name, sing-box tag); unique within one subscription. */
  name: string;
  kind: ProfileKind;
  /** The node's address as given: a hostname, IPv4 or IPv6 literal without brackets. */
  host: string;
  port: number;
  credentials: EndpointCredentials;
  security: EndpointSecurity;
  flow?: string;
}

export interface EndpointSource {
  node: SubscriptionNode;
  profile: ClientProfile;
}

/** An IPv6 literal, with or without brackets: it contains a colon, which no hostname or IPv4 address does. */
export function isIpv6(host: string): boolean {
  return host.includes(':');
}

function credentials(kind: ProfileKind, user: ProxyUser): EndpointCredentials {
  switch (kind) {
    case 'vless-reality':
    case 'vless-tls':
    case 'vless':
      return { protocol: 'vless', uuid: user.vlessId };
    case 'trojan-tls':
      return { protocol: 'trojan', password: user.trojanPassword };
    case 'http':
    case 'socks':
      return { protocol: kind, username: user.proxyUsername, password: user.proxyPassword };
  }
}

function security(profile: ClientProfile): EndpointSecurity {
  const s = profile.settings;
  const serverName = s.serverNames?.[0];
  switch (profile.kind) {
    case 'vless-reality':
      if (!serverName || !s.publicKey) throw new Error(`profile ${profile.profileId}: REALITY needs serverNames and publicKey for clients`);
      return { type: 'reality', serverName, fingerprint: s.fingerprint ?? DEFAULT_FINGERPRINT, publicKey: s.publicKey, shortId: s.shortIds?.[0] ?? '' };
    case 'vless-tls':
    case 'trojan-tls':
      return { type: 'tls', ...(serverName ? { serverName } : {}), ...(s.fingerprint ? { fingerprint: s.fingerprint } : {}) };
    case 'vless':
    case 'http':
    case 'socks':
      return { type: 'none' };
  }
}

function remark(node: SubscriptionNode, profile: ClientProfile): string {
  const place = node.city ? ` (${node.city})` : '';
  return `${node.name}${place} ${profile.kind}`;
}

/** One endpoint: `profile` on `node` for `user`. */
export function describeEndpoint(node: SubscriptionNode, profile: ClientProfile, user: ProxyUser): Endpoint {
  const host = node.address.replace(/^\[(.*)\]$/, '$1');
  const flow = (profile.kind === 'vless-reality' || profile.kind === 'vless-tls') && profile.settings.flow ? profile.settings.flow : undefined;
  return {
    name: remark(node, profile),
    kind: profile.kind,
    host,
    port: profile.port,
    credentials: credentials(profile.kind, user),
    security: security(profile),
    ...(flow ? { flow } : {}),
  };
}

/**
 * Every endpoint of a subscription, in the order given. Names are made unique
 * (" 2", " 3", ... appended) because Clash refuses duplicate proxy names and
 * sing-box duplicate tags, and two profiles of one kind on a node would collide.
 */
export function describeEndpoints(sources: readonly EndpointSource[], user: ProxyUser): Endpoint[] {
  const taken = new Set<string>();
  return sources.map(({ node, profile }) => {
    const endpoint = describeEndpoint(node, profile, user);
    let name = endpoint.name;
    for (let n = 2; taken.has(name); n++) name = `${endpoint.name} ${n}`;
    taken.add(name);
    return { ...endpoint, name };
  });
}
