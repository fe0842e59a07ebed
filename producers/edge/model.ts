/**
 * What an edge site is once validated, and what an edge node is asked to
 * serve: the shared language of the sites context (producers/edge), the
 * fleet's rendering of edge nodes' desired state, and the agent's edge
 * drivers (nginx, Caddy). Every string here has passed the sites context's
 * validation (hostnames in punycode, CIDRs normalised, header names and values
 * by RFC 9110); drivers still render it by typed code with escaping.
 */

export const TLS_MODES = ['acme', 'self-signed', 'custom', 'off'] as const;
export type TlsMode = (typeof TLS_MODES)[number];

/** `off`: no ModSecurity; `detect`: rules run and log, nothing is blocked; 1-4: CRS 3.3 paranoia levels, blocking. */
export const WAF_LEVELS = ['off', 'detect', '1', '2', '3', '4'] as const;
export type WafLevel = (typeof WAF_LEVELS)[number];

export interface Upstream {
  /** A hostname (punycode) or an IP literal. */
  host: string;
  port: number;
  /** 1-100; default 1. */
  weight: number;
}

export interface SiteSpec {
  siteId: string;
  /** Bumped by every change of the site (its aggregate's last stream sequence): what a node reports as applied. */
  version: number;
  /** Lower-case punycode. */
  domain: string;
  aliases: string[];
  upstreams: Upstream[];
  tls: { mode: TlsMode };
  waf: { level: WafLevel };
  cache: { enabled: boolean; ttlSeconds: number; bypass: string[] };
  access: { allow: string[]; deny: string[]; blockedCountries: string[] };
  rateLimit: { requestsPerSecond: number; burst: number } | null;
  /** Response headers added to every answer of the site. */
  headers: Record<string, string>;
  /** `block`: the site answers a fixed page and never reaches its upstreams. */
  blocked: boolean;
  /**
   * Cache purges (POST /v1/sites/:id/purge), as cache-key versions: `generation` is the stream
   * sequence of the last whole-site purge (0: none), `paths` the exact request URIs purged since,
   * each with its purge's sequence. Absent in last-good files written before purges existed.
   */
  cachePurge?: CachePurge;
}

export interface CachePurge {
  generation: number;
  paths: { path: string; generation: number }[];
}

/** A certificate an edge node holds for a site (unsealed on the node only). */
export interface SiteCertificate {
  siteId: string;
  certificatePem: string;
  privateKeyPem: string;
  notAfter: string;
}

/** Which certificate a node should hold for an ACME site: the serial and expiry, never the key (the agent fetches it with `edge-certificate`). */
export interface CertificateRef {
  siteId: string;
  serial: string;
  /** ISO 8601. */
  notAfter: string;
}

/** One HTTP-01 answer an edge node serves at /.well-known/acme-challenge/<token> while the CA validates it. */
export interface ChallengeAnswer {
  token: string;
  keyAuthorization: string;
}

/** What one edge node is asked to serve at one desired version. */
export interface EdgeDesired {
  version: number;
  sites: SiteSpec[];
  /** The ACME certificates of its sites (part of the version: a renewal moves it). */
  certificates?: CertificateRef[];
}

/** One site's outcome on one node: applied at a version, or rejected with the edge's own error text (its last good version keeps serving). */
export type SiteOutcome = { siteId: string; version: number; status: 'applied' } | { siteId: string; version: number; status: 'rejected'; error: string; servingVersion: number | null };
