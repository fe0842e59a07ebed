/**
 * Where an nginx edge node keeps things under its state directory. Releases
 * (rendered trees) come and go; everything else here outlives them, so the
 * rendered files point at it by absolute path and a swap of `current` never
 * moves a pid file, a log, a cache or an ACME token.
 */
import path from 'node:path';

export interface EdgeLayout {
  root: string;
  /** `current -> releases/<n>`: what the running nginx reads (`-c current/nginx.conf`). */
  current: string;
  releases: string;
  release(id: number): string;
  pidFile: string;
  /** Unix socket of the control server (release id, stub_status): never a TCP port. */
  controlSocket: string;
  logs: string;
  errorLog: string;
  accessLog: string;
  /** Every site's requests, one JSON line each (log_format edge_traffic): what the agent's traffic metrics read. */
  trafficLog: string;
  modsecAuditLog: string;
  temp: string;
  /** One proxy_cache directory per site. */
  cache(siteId: string): string;
  /** ACME HTTP-01 tokens, one file per token, served on every site at /.well-known/acme-challenge/. */
  acmeChallenges: string;
  /** Last good SiteSpec per site, one JSON file each. */
  lastGood: string;
}

export function edgeLayout(root: string): EdgeLayout {
  const at = (...parts: string[]): string => path.join(root, ...parts);
  return {
    root,
    current: at('current'),
    releases: at('releases'),
    release: (id) => at('releases', String(id)),
    pidFile: at('run', 'nginx.pid'),
    controlSocket: at('run', 'control.sock'),
    logs: at('logs'),
    errorLog: at('logs', 'error.log'),
    accessLog: at('logs', 'access.log'),
    trafficLog: at('logs', 'traffic.log'),
    modsecAuditLog: at('logs', 'modsec_audit.log'),
    temp: at('tmp'),
    cache: (siteId) => at('cache', siteId),
    acmeChallenges: at('acme'),
    lastGood: at('state', 'last-good'),
  };
}

/** Directories that must exist before nginx -t or a start. */
export function stateDirectories(layout: EdgeLayout): string[] {
  return [layout.releases, path.dirname(layout.pidFile), layout.logs, layout.temp, path.join(layout.root, 'cache'), layout.acmeChallenges, layout.lastGood];
}
