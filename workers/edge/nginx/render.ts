/**
 * Renders what an nginx edge node serves into a tree of files (relative path
 * → contents): nginx.conf, sites/<siteId>.conf, waf/main.conf (ModSecurity
 * engine + CRS, loaded once in http {}) and waf/paranoia.conf. A site whose
 * spec cannot be rendered (a value no grammar accepts) is left out and
 * reported, so it fails alone like a site nginx -t rejects.
 */
import path from 'node:path';
import type { EdgeDesired, SiteSpec } from '../../../producers/edge/model.js';
import { block, comment, directive, renderConf, type ConfNode } from './conf.js';
import { int, scriptStr, str, word } from './escape.js';
import { edgeLayout } from './layout.js';
import { renderSite } from './site.js';
import { SITE_VARIABLE, TRAFFIC_LOG_FORMAT, trafficLogFormat } from './traffic-format.js';
import { renderModsecurityMain, renderParanoia } from './waf.js';

export interface NginxRenderOptions {
  /** State directory of the node (pid, logs, temp, caches, ACME tokens): see ./layout.ts. */
  prefix: string;
  /** Absolute directory the rendered tree will live in (a release directory); every include points into it. */
  confDir: string;
  /** Address every site listens on; 127.0.0.1 in tests, 0.0.0.0 on a node. */
  address: string;
  httpPort: number;
  httpsPort: number;
  /** Site id → certificate files on this node; a site without one is served over HTTP only. */
  certificates: ReadonlyMap<string, { certPath: string; keyPath: string }>;
  /** Debian: /usr/share/modsecurity-crs. */
  crsDir: string;
  /** Debian: /etc/modsecurity/crs/crs-setup.conf. */
  crsSetup: string;
  /** Debian: /usr/lib/nginx/modules. */
  modulesDir: string;
  /** Debian (geoip-database): /usr/share/GeoIP/GeoIP.dat; without it a site with blockedCountries is rejected. */
  geoipCountryDb?: string;
  /** Debian: /etc/nginx/unicode.mapping. */
  unicodeMapFile?: string;
  /** Rendered as `user`: only meaningful when the master runs as root (workers would otherwise run as nobody and could not write the caches). */
  user?: string;
  workerProcesses?: number;
  /** Answered by the control socket at /release, so a reload is known to have taken effect. */
  releaseId: string;
}

export interface RenderedTree {
  files: Map<string, string>;
  /** Sites left out, with why. */
  rejected: Map<string, string>;
}

export const sitePath = (siteId: string): string => `sites/${siteId}.conf`;

function mainConf(opts: NginxRenderOptions, geoip: boolean): ConfNode[] {
  const layout = edgeLayout(opts.prefix);
  const at = (name: string): string => path.join(layout.temp, name);
  const http: ConfNode[] = [
    directive('default_type', word('application/octet-stream')),
    directive('server_tokens', word('off')),
    directive('access_log', str(layout.accessLog)),
    comment('One JSON line per request of a site (each server block logs to the traffic log with it): workers/edge/nginx/traffic-format.ts.'),
    directive('log_format', word(TRAFFIC_LOG_FORMAT), word('escape=json'), str(trafficLogFormat())),
    directive('client_body_temp_path', str(at('client_body'))),
    directive('proxy_temp_path', str(at('proxy'))),
    directive('fastcgi_temp_path', str(at('fastcgi'))),
    directive('uwsgi_temp_path', str(at('uwsgi'))),
    directive('scgi_temp_path', str(at('scgi'))),
    directive('server_names_hash_max_size', word('65536')),
    directive('server_names_hash_bucket_size', word('128')),
    directive('variables_hash_max_size', word('4096')),
    comment('A literal "$" for scripts: nginx has no escape for it (see escape.ts scriptStr).'),
    block('geo', [word('$dollar')], [directive('default', str('$'))]),
    directive('modsecurity_rules_file', str(path.join(opts.confDir, 'waf', 'main.conf'))),
  ];
  if (geoip && opts.geoipCountryDb !== undefined) http.push(directive('geoip_country', str(opts.geoipCountryDb)));
  http.push(
    comment('Requests for names no site serves.'),
    block('server', [], [
      directive('listen', word(`${opts.address}:${int(opts.httpPort, 1, 65_535, 'HTTP port').text}`), word('default_server')),
      directive('listen', word(`${opts.address}:${int(opts.httpsPort, 1, 65_535, 'HTTPS port').text}`), word('ssl'), word('default_server')),
      directive('ssl_reject_handshake', word('on')),
      // Declares the variable the traffic log format names, also when no site is rendered (site.ts sets it per server).
      directive('set', word(SITE_VARIABLE), str('')),
      directive('return', word('421')),
    ]),
    comment('Control server on a unix socket: which release runs, and stub_status.'),
    block('server', [], [
      directive('listen', word(`unix:${layout.controlSocket}`)),
      directive('access_log', word('off')),
      block('location', [word('='), str('/release')], [directive('default_type', word('text/plain')), directive('return', word('200'), scriptStr(opts.releaseId))]),
      block('location', [word('='), str('/status')], [directive('stub_status')]),
    ]),
    directive('include', str(path.join(opts.confDir, 'sites', '*.conf'))),
  );
  return [
    comment('Rendered by Relaygrid (workers/edge/nginx); every path is explicit so nothing depends on /etc/nginx.'),
    directive('load_module', str(path.join(opts.modulesDir, 'ngx_http_modsecurity_module.so'))),
    directive('load_module', str(path.join(opts.modulesDir, 'ngx_http_geoip_module.so'))),
    ...(opts.user !== undefined ? [directive('user', str(opts.user))] : []),
    directive('worker_processes', int(opts.workerProcesses ?? 1, 1, 64, 'worker processes')),
    directive('pid', str(layout.pidFile)),
    directive('error_log', str(layout.errorLog), word('notice')),
    block('events', [], [directive('worker_connections', word('4096'))]),
    block('http', [], http),
  ];
}

export function renderNginx(desired: EdgeDesired, opts: NginxRenderOptions): RenderedTree {
  const layout = edgeLayout(opts.prefix);
  const files = new Map<string, string>();
  const rejected = new Map<string, string>();
  const rendered: SiteSpec[] = [];
  const geoip = opts.geoipCountryDb !== undefined;
  for (const site of desired.sites) {
    try {
      const nodes = renderSite(site, {
        address: opts.address,
        httpPort: opts.httpPort,
        httpsPort: opts.httpsPort,
        certificate: opts.certificates.get(site.siteId),
        cacheDir: layout.cache(site.siteId),
        trafficLog: layout.trafficLog,
        accessLog: layout.accessLog,
        acmeDir: layout.acmeChallenges,
        geoip,
      });
      files.set(sitePath(site.siteId), renderConf(nodes));
      rendered.push(site);
    } catch (err) {
      rejected.set(site.siteId, `cannot render site: ${(err as Error).message}`);
    }
  }
  const usesGeoip = rendered.some((site) => site.access.blockedCountries.length > 0);
  files.set('nginx.conf', renderConf(mainConf(opts, usesGeoip)));
  files.set(
    'waf/main.conf',
    renderModsecurityMain({
      crsDir: opts.crsDir,
      crsSetup: opts.crsSetup,
      paranoiaFile: path.join(opts.confDir, 'waf', 'paranoia.conf'),
      tempDir: layout.temp,
      auditLog: layout.modsecAuditLog,
      unicodeMapFile: opts.unicodeMapFile,
    }),
  );
  files.set('waf/paranoia.conf', renderParanoia(rendered));
  return { files, rejected };
}
