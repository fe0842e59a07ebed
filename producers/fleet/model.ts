/**
 * The fleet's vocabulary, shared by the deciders, the renderer (workers/fleet/render),
 * the subscription formats and the node agent: what an inbound profile is, what a
 * node is, and which user credentials a node needs.
 */

/** The inbound kinds Relaygrid renders. `vless` without TLS exists for private links and tests. */
export const PROFILE_KINDS = ['vless-reality', 'vless-tls', 'vless', 'trojan-tls', 'http', 'socks'] as const;
export type ProfileKind = (typeof PROFILE_KINDS)[number];

/** Settings of a profile that are safe to show: everything but the REALITY private key. */
export interface ProfileSettings {
  /** REALITY: the site whose TLS handshake is borrowed, `host:port`. */
  dest?: string;
  /** REALITY: SNI values clients may present; the first is put in share links. TLS: the certificate's name. */
  serverNames?: string[];
  /** REALITY: short ids (hex, even length, at most 16 characters); the first is put in share links. */
  shortIds?: string[];
  /** REALITY: the X25519 public key (base64url, no padding), `pbk` in share links. */
  publicKey?: string;
  /** uTLS fingerprint clients imitate, `fp` in share links (default chrome). */
  fingerprint?: string;
  /** VLESS flow; `xtls-rprx-vision` for REALITY. */
  flow?: string;
  /** TLS: certificate and key files on the node. */
  certificateFile?: string;
  keyFile?: string;
}

/** Secrets of a profile: sealed in events, opened only inside the fleet context, never in a read model or a log line. */
export interface ProfileSecrets {
  realityPrivateKey?: string;
}

export interface InboundProfile {
  /** Also the inbound's tag in the core configuration. */
  profileId: string;
  kind: ProfileKind;
  port: number;
  /** Assigned to every node that has all of these labels (none: every node). */
  labels: string[];
  settings: ProfileSettings;
  secrets: ProfileSecrets;
}

/** A user's proxy credentials as nodes need them (one set per user, see identity's proxy_credentials). */
export interface ProxyUser {
  userId: string;
  vlessId: string;
  trojanPassword: string;
  proxyUsername: string;
  proxyPassword: string;
  /** The inbound kinds the user's plan allows; absent or empty = every kind (producers/plans/access.ts). */
  inboundKinds?: readonly string[];
}

/** A `proxy_credentials` row (identity's read model) as nodes need it. */
export function proxyUserOf(row: { user_id: string; vless_id: string; trojan_password: string; proxy_username: string; proxy_password: string }): ProxyUser {
  return { userId: row.user_id, vlessId: row.vless_id, trojanPassword: row.trojan_password, proxyUsername: row.proxy_username, proxyPassword: row.proxy_password };
}

export type NodeHealth = 'unknown' | 'healthy' | 'degraded' | 'down';

export interface NodeDescription {
  nodeId: string;
  address: string;
  region: string;
  country: string;
  city: string;
  labels: string[];
  roles: string[];
}

/** Whether a profile is assigned to a node: the node has every label the profile asks for. */
export function profileAssigned(profile: Pick<InboundProfile, 'labels'>, nodeLabels: readonly string[]): boolean {
  return profile.labels.every((label) => nodeLabels.includes(label));
}
