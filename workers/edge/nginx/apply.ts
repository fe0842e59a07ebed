/**
 * The nginx side of an edge node: apply(desired) renders the whole tree into
 * a fresh release, has nginx -t judge it, and when a site breaks the test it
 * is put back to its last good version (or left out) and the tree re-rendered,
 * until the test passes; then `current` is swapped to the release and nginx
 * reloaded. One bad site is rejected alone with nginx's own words while every
 * other site ships, and what it served before keeps serving.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { EdgeDesired, SiteOutcome, SiteSpec } from '../../../producers/edge/model.js';
import type { Logger } from '../../../infra/logger.js';
import { failingSites } from './failures.js';
import { LastGoodSites } from './last-good.js';
import { edgeLayout, stateDirectories, type EdgeLayout } from './layout.js';
import { NginxProcess } from './nginx-process.js';
import { currentReleaseId, nextReleaseId, pruneReleases, switchCurrent, writeTree, type WrittenTree } from './releases.js';
import { renderNginx, type NginxRenderOptions } from './render.js';
import { NginxTrafficLogs, type EdgeTrafficRead } from './traffic-log.js';

export type Certificates = ReadonlyMap<string, { certPath: string; keyPath: string }>;

/** Where Debian 12 puts what the renderer needs (packages nginx, libnginx-mod-http-modsecurity, modsecurity-crs, libnginx-mod-http-geoip, geoip-database). */
export const DEBIAN_PATHS = {
  binary: '/usr/sbin/nginx',
  modulesDir: '/usr/lib/nginx/modules',
  crsDir: '/usr/share/modsecurity-crs',
  crsSetup: '/etc/modsecurity/crs/crs-setup.conf',
  unicodeMapFile: '/etc/nginx/unicode.mapping',
  geoipCountryDb: '/usr/share/GeoIP/GeoIP.dat',
} as const;

export interface NginxEdgeOptions {
  /** State directory of the node (./layout.ts). */
  root: string;
  address: string;
  httpPort: number;
  httpsPort: number;
  logger: Logger;
  certificates?: Certificates;
  binary?: string;
  modulesDir?: string;
  crsDir?: string;
  crsSetup?: string;
  /** null: no SecUnicodeMapFile. */
  unicodeMapFile?: string | null;
  /** null: no GeoIP (sites with blockedCountries are rejected). */
  geoipCountryDb?: string | null;
  workerProcesses?: number;
  /** Rendered `user`; defaults to the current user when running as root (workers would otherwise be `nobody`). */
  user?: string;
  readyTimeoutMs?: number;
}

type Choice = { use: 'desired' } | { use: 'last-good'; error: string } | { use: 'none'; error: string };

export class NginxEdge {
  private readonly layout: EdgeLayout;
  private readonly lastGood: LastGoodSites;
  private readonly nginx: NginxProcess;
  private certificates: Certificates;
  /** The last release this process wrote, whose unchanged files the next one links. */
  private lastTree: WrittenTree | undefined;
  private readonly logs: NginxTrafficLogs;
  /** apply/start/stop run one at a time: two releases must never be staged at once. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: NginxEdgeOptions) {
    this.layout = edgeLayout(opts.root);
    this.lastGood = new LastGoodSites(this.layout.lastGood);
    this.certificates = opts.certificates ?? new Map();
    this.logs = new NginxTrafficLogs(this.layout.trafficLog, this.layout.errorLog);
    this.nginx = new NginxProcess({ binary: opts.binary ?? DEBIAN_PATHS.binary, layout: this.layout, logger: opts.logger, readyTimeoutMs: opts.readyTimeoutMs });
  }

  /** Pid of the nginx master, while it runs. */
  get pid(): number | undefined {
    return this.nginx.pid;
  }

  get paths(): EdgeLayout {
    return this.layout;
  }

  /** Starts nginx serving the last good version of every site this node knew (none on a fresh node). */
  start(): Promise<void> {
    return this.serialized(async () => {
      for (const dir of stateDirectories(this.layout)) await mkdir(dir, { recursive: true });
      await this.lastGood.load();
      // What earlier runs logged was theirs to count.
      await this.logs.skipExisting();
      await this.deploy(this.lastGood.all());
    });
  }

  /** Serves exactly `desired.sites` (sites not in it are removed); `certificates`, when given, replace the node's set. */
  apply(desired: EdgeDesired, certificates?: Certificates): Promise<SiteOutcome[]> {
    return this.serialized(async () => {
      if (!this.nginx.running) throw new Error('NginxEdge.apply before start()');
      if (certificates) this.certificates = certificates;
      const outcomes = await this.deploy(desired.sites);
      const wanted = new Set(desired.sites.map((site) => site.siteId));
      for (const site of this.lastGood.all()) if (!wanted.has(site.siteId)) await this.lastGood.delete(site.siteId);
      return outcomes;
    });
  }

  stop(): Promise<void> {
    return this.serialized(async () => {
      await this.nginx.stop();
      await this.logs.close();
    });
  }

  /** The requests and WAF blocks nginx logged since the last call (docs/edge.md#observability). */
  readTraffic(): Promise<EdgeTrafficRead> {
    return this.logs.read(() => this.nginx.reopenLogs());
  }

  /** The sites nginx serves now (each one's last good version). */
  servedSites(): Set<string> {
    return new Set(this.lastGood.all().map((site) => site.siteId));
  }

  /** Site id → the certificate file its server block uses, for the sites this node serves. */
  certificateFiles(): Map<string, string> {
    const files = new Map<string, string>();
    for (const site of this.lastGood.all()) {
      const cert = this.certificates.get(site.siteId);
      if (cert) files.set(site.siteId, cert.certPath);
    }
    return files;
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private renderOptions(releaseId: number): NginxRenderOptions {
    const { opts } = this;
    const optional = <T>(value: T | null | undefined, fallback: T): T | undefined => (value === null ? undefined : (value ?? fallback));
    return {
      prefix: this.layout.root,
      confDir: this.layout.release(releaseId),
      address: opts.address,
      httpPort: opts.httpPort,
      httpsPort: opts.httpsPort,
      certificates: this.certificates,
      crsDir: opts.crsDir ?? DEBIAN_PATHS.crsDir,
      crsSetup: opts.crsSetup ?? DEBIAN_PATHS.crsSetup,
      modulesDir: opts.modulesDir ?? DEBIAN_PATHS.modulesDir,
      unicodeMapFile: optional(opts.unicodeMapFile, DEBIAN_PATHS.unicodeMapFile),
      geoipCountryDb: optional(opts.geoipCountryDb, DEBIAN_PATHS.geoipCountryDb),
      user: opts.user ?? (process.getuid?.() === 0 ? 'root' : undefined),
      workerProcesses: opts.workerProcesses,
      releaseId: String(releaseId),
    };
  }

  /** The version of `site` to serve under its current choice. */
  private pick(site: SiteSpec, choice: Choice): SiteSpec | undefined {
    if (choice.use === 'desired') return site;
    if (choice.use === 'last-good') return this.lastGood.get(site.siteId);
    return undefined;
  }

  /** A site's version failed: fall back to its last good version if that is another one, else leave it out. */
  private fallBack(site: SiteSpec, choice: Choice, error: string): Choice {
    if (choice.use === 'desired') {
      const good = this.lastGood.get(site.siteId);
      return good !== undefined && good.version !== site.version ? { use: 'last-good', error } : { use: 'none', error };
    }
    return { use: 'none', error: choice.use === 'last-good' ? choice.error : error };
  }

  private async deploy(sites: readonly SiteSpec[]): Promise<SiteOutcome[]> {
    const releaseId = await nextReleaseId(this.layout);
    const dir = this.layout.release(releaseId);
    const choices = new Map<string, Choice>(sites.map((site) => [site.siteId, { use: 'desired' }]));
    for (;;) {
      const serving = sites.flatMap((site) => this.pick(site, choices.get(site.siteId) ?? { use: 'desired' }) ?? []);
      const tree = renderNginx({ version: releaseId, sites: serving }, this.renderOptions(releaseId));
      let failed: Map<string, string> = tree.rejected;
      if (failed.size === 0) {
        const written = await writeTree(dir, tree.files, this.lastTree);
        const error = await this.nginx.test(path.join(dir, 'nginx.conf'));
        if (error === null) {
          this.lastTree = written;
          break;
        }
        const ids = failingSites(error, dir, this.certificates, new Set(serving.map((site) => site.siteId)));
        // Not one site's fault as far as nginx says: take every changed site back, and give up if none changed.
        const blamed = ids.length > 0 ? ids : sites.filter((site) => choices.get(site.siteId)?.use === 'desired' && this.lastGood.get(site.siteId)?.version !== site.version).map((site) => site.siteId);
        if (blamed.length === 0) throw new Error(`nginx rejects the node's configuration: ${error}`);
        failed = new Map(blamed.map((id) => [id, error]));
      }
      for (const site of sites) {
        const error = failed.get(site.siteId);
        if (error !== undefined) choices.set(site.siteId, this.fallBack(site, choices.get(site.siteId) ?? { use: 'desired' }, error));
      }
    }
    await this.activate(releaseId);
    const outcomes: SiteOutcome[] = [];
    for (const site of sites) {
      const choice = choices.get(site.siteId) ?? { use: 'desired' };
      if (choice.use === 'desired') {
        await this.lastGood.set(site);
        outcomes.push({ siteId: site.siteId, version: site.version, status: 'applied' });
      } else {
        const servingVersion = choice.use === 'last-good' ? (this.lastGood.get(site.siteId)?.version ?? null) : null;
        outcomes.push({ siteId: site.siteId, version: site.version, status: 'rejected', error: choice.error, servingVersion });
      }
    }
    await pruneReleases(this.layout);
    return outcomes;
  }

  /** Swaps `current` to the release and (re)loads nginx; puts `current` back if nginx does not take it. */
  private async activate(releaseId: number): Promise<void> {
    const previous = await currentReleaseId(this.layout);
    await switchCurrent(this.layout, releaseId);
    try {
      if (this.nginx.running) await this.nginx.reload(String(releaseId));
      else await this.nginx.start(path.join(this.layout.current, 'nginx.conf'), String(releaseId));
    } catch (err) {
      if (previous !== null) await switchCurrent(this.layout, previous);
      throw err;
    }
  }
}
