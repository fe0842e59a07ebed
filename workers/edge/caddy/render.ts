/**
 * Renders what a Caddy edge node serves into one Caddy JSON configuration:
 * an HTTP server with every site, an HTTPS server with the sites this node
 * holds a certificate for (tls.certificates.load_files, picked by SNI through
 * a tag per site), names no site serves answered 421 as on nginx nodes. No
 * automatic HTTPS: certificates come from the fleet's one ACME order per
 * domain, as files. A site that cannot be rendered (a value no grammar
 * accepts, a feature stock Caddy lacks) is left out and reported, so it fails
 * alone like a site Caddy refuses to provision.
 */
import type { EdgeDesired, SiteSpec } from '../../../producers/edge/model.js';
import { int, str } from '../nginx/escape.js';
import { literal, siteRoute, type CaddyJson, type CaddyObject } from './site.js';

export type CertificateFiles = ReadonlyMap<string, { certPath: string; keyPath: string }>;

export interface CaddyRenderOptions {
  /** The admin endpoint, as Caddy spells it: `unix//<path>` or `127.0.0.1:<port>`. Every loaded config must repeat it, or Caddy moves its admin API. */
  adminListen: string;
  /** storage.file_system.root: Caddy's certificate cache and locks. */
  storageRoot: string;
  /** Address every site listens on; 127.0.0.1 in tests, 0.0.0.0 on a node. */
  address: string;
  httpPort: number;
  httpsPort: number;
  /** ACME HTTP-01 tokens, one file per token, served on every site. */
  acmeDir: string;
  /** Site id → certificate files on this node; a site without one is served over HTTP only. */
  certificates: CertificateFiles;
}

export interface RenderedCaddy {
  config: CaddyObject;
  /** The sites in the configuration. */
  rendered: SiteSpec[];
  /** Sites left out, with why. */
  rejected: Map<string, string>;
}

/** The tag that ties a site's loaded certificate to its TLS connection policy. */
export const certificateTag = (siteId: string): string => `site-${siteId}`;

const NO_SITE_STATUS = 421;
const noSite: CaddyObject = { handle: [{ handler: 'static_response', status_code: NO_SITE_STATUS }], terminal: true };

function listen(address: string, port: number, what: string): string {
  str(address);
  return `${address}:${int(port, 1, 65_535, what).text}`;
}

/** The part of every configuration that is about the node, not its sites (also the boot config). */
export function nodeConfig(opts: Pick<CaddyRenderOptions, 'adminListen' | 'storageRoot'>): CaddyObject {
  return {
    // Persisting would make Caddy resume an old config on its own; the driver's last-good state is the only memory.
    // Caddy checks the Host of admin requests against `origins` (by default, over a unix socket, only an empty Host passes).
    admin: { listen: opts.adminListen, origins: ['localhost'], config: { persist: false } },
    storage: { module: 'file_system', root: literal(opts.storageRoot) },
    logging: { logs: { default: { level: 'WARN' } } },
  };
}

export function renderCaddy(desired: EdgeDesired, opts: CaddyRenderOptions): RenderedCaddy {
  const rejected = new Map<string, string>();
  const rendered: SiteSpec[] = [];
  const httpRoutes: CaddyJson[] = [];
  const httpsRoutes: CaddyJson[] = [];
  const loadFiles: CaddyJson[] = [];
  const policies: CaddyJson[] = [];
  for (const site of desired.sites) {
    let route: CaddyObject;
    try {
      route = siteRoute(site, opts.acmeDir);
    } catch (err) {
      rejected.set(site.siteId, `cannot render site: ${(err as Error).message}`);
      continue;
    }
    rendered.push(site);
    httpRoutes.push(route);
    const files = opts.certificates.get(site.siteId);
    if (files === undefined) continue;
    httpsRoutes.push(route);
    loadFiles.push({ certificate: literal(files.certPath), key: literal(files.keyPath), tags: [certificateTag(site.siteId)] });
    // No policy matches a name without a certificate: the handshake is refused, as nginx's ssl_reject_handshake does.
    policies.push({ match: { sni: [site.domain, ...site.aliases] }, certificate_selection: { any_tag: [certificateTag(site.siteId)] } });
  }
  const servers: CaddyObject = {
    http: { listen: [listen(opts.address, opts.httpPort, 'HTTP port')], automatic_https: { disable: true }, routes: [...httpRoutes, noSite] },
  };
  const apps: CaddyObject = { http: { servers } };
  if (policies.length > 0) {
    servers.https = { listen: [listen(opts.address, opts.httpsPort, 'HTTPS port')], automatic_https: { disable: true }, tls_connection_policies: policies, routes: [...httpsRoutes, noSite] };
    apps.tls = { certificates: { load_files: loadFiles } };
  }
  return { config: { ...nodeConfig(opts), apps }, rendered, rejected };
}
