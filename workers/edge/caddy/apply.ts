/**
 * The Caddy side of an edge node: apply(desired) renders one JSON config of
 * every site and replaces Caddy's config through its admin API (atomic: a
 * config that fails to provision is rolled back by Caddy itself). When Caddy
 * refuses it, the failing sites are found by bisection with `caddy validate`
 * (a scratch instance that binds nothing), put back to their last good
 * version (or left out), and the rest is loaded. One bad site is rejected
 * alone with Caddy's own words while every other site ships, as on nginx
 * nodes (../nginx/apply.ts), whose per-site last-good store this reuses.
 */
import { lookup } from 'node:dns/promises';
import { mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import path from 'node:path';
import type { Logger } from '../../../infra/logger.js';
import type { EdgeDesired, SiteOutcome, SiteSpec } from '../../../producers/edge/model.js';
import { LastGoodSites } from '../nginx/last-good.js';
import { CaddyProcess, CaddyRefusal } from './caddy-process.js';
import { LastGoodCertificates } from './last-good-certs.js';
import { nodeConfig, renderCaddy, type CertificateFiles } from './render.js';

/** Where a Caddy edge node keeps things under its state directory. */
export interface CaddyEdgeLayout {
  root: string;
  /** Boot config, scratch configs of `caddy validate`, the admin socket. */
  run: string;
  adminSocket: string;
  /** HOME / XDG dirs of the child, and Caddy's storage (storage.file_system.root). */
  data: string;
  storage: string;
  /** ACME HTTP-01 tokens, one file per token, served on every site at /.well-known/acme-challenge/. */
  acmeChallenges: string;
  /** Last good SiteSpec per site (../nginx/last-good.ts). */
  lastGood: string;
  /** Copies of the certificate files each site was last applied with. */
  lastGoodCertificates: string;
}

export function caddyEdgeLayout(root: string): CaddyEdgeLayout {
  const at = (...parts: string[]): string => path.join(root, ...parts);
  return {
    root,
    run: at('run'),
    adminSocket: at('run', 'admin.sock'),
    data: at('data'),
    storage: at('data', 'storage'),
    acmeChallenges: at('acme'),
    lastGood: at('state', 'last-good'),
    lastGoodCertificates: at('state', 'last-good-certs'),
  };
}

export interface CaddyEdgeOptions {
  /** State directory of the node; no spaces, no braces. */
  root: string;
  address: string;
  httpPort: number;
  httpsPort: number;
  logger: Logger;
  certificates?: CertificateFiles;
  /** Debian: /usr/bin/caddy. */
  binary?: string;
  readyTimeoutMs?: number;
}

type Choice = { use: 'desired' } | { use: 'last-good'; error: string } | { use: 'none'; error: string };

/** One site as it would be served under its choice, with the certificate files it would load. */
interface Candidate {
  spec: SiteSpec;
  certificate: { certPath: string; keyPath: string } | undefined;
}

export class CaddyEdge {
  private readonly layout: CaddyEdgeLayout;
  private readonly lastGood: LastGoodSites;
  private readonly lastGoodCerts: LastGoodCertificates;
  private readonly caddy: CaddyProcess;
  private certificates: CertificateFiles;
  /** apply/start/stop run one at a time. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: CaddyEdgeOptions) {
    this.layout = caddyEdgeLayout(opts.root);
    this.lastGood = new LastGoodSites(this.layout.lastGood);
    this.lastGoodCerts = new LastGoodCertificates(this.layout.lastGoodCertificates);
    this.certificates = opts.certificates ?? new Map();
    this.caddy = new CaddyProcess({
      binary: opts.binary ?? '/usr/bin/caddy',
      home: this.layout.data,
      adminSocket: this.layout.adminSocket,
      runDir: this.layout.run,
      logger: opts.logger,
      readyTimeoutMs: opts.readyTimeoutMs,
    });
  }

  /** Pid of the caddy process, while it runs. */
  get pid(): number | undefined {
    return this.caddy.pid;
  }

  get paths(): CaddyEdgeLayout {
    return this.layout;
  }

  /** Starts caddy serving the last good version of every site this node knew (none on a fresh node), with their last good certificates. */
  start(): Promise<void> {
    return this.serialized(async () => {
      const { layout } = this;
      for (const dir of [layout.run, layout.storage, layout.acmeChallenges, layout.lastGood, layout.lastGoodCertificates]) await mkdir(dir, { recursive: true });
      await this.lastGood.load();
      await this.lastGoodCerts.load();
      await this.caddy.start(nodeConfig({ adminListen: this.adminListen(), storageRoot: layout.storage }));
      await this.deploy(this.lastGood.all(), this.lastGoodCerts.all());
    });
  }

  /** Serves exactly `desired.sites` (sites not in it are removed); `certificates`, when given, replace the node's set. */
  apply(desired: EdgeDesired, certificates?: CertificateFiles): Promise<SiteOutcome[]> {
    return this.serialized(async () => {
      if (!this.caddy.running) throw new Error('CaddyEdge.apply before start()');
      if (certificates) this.certificates = certificates;
      const outcomes = await this.deploy(desired.sites, this.certificates);
      const wanted = new Set(desired.sites.map((site) => site.siteId));
      for (const site of this.lastGood.all()) {
        if (wanted.has(site.siteId)) continue;
        await this.lastGood.delete(site.siteId);
        await this.lastGoodCerts.delete(site.siteId);
      }
      return outcomes;
    });
  }

  stop(): Promise<void> {
    return this.serialized(() => this.caddy.stop());
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work, work);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private adminListen(): string {
    return `unix/${this.layout.adminSocket}`;
  }

  private candidate(site: SiteSpec, choice: Choice, certificates: CertificateFiles): Candidate | undefined {
    if (choice.use === 'desired') return { spec: site, certificate: certificates.get(site.siteId) };
    const good = choice.use === 'last-good' ? this.lastGood.get(site.siteId) : undefined;
    return good && { spec: good, certificate: this.lastGoodCerts.get(site.siteId) };
  }

  /** A site's version failed: fall back to its last good version (with its last good certificate), else leave it out. */
  private fallBack(site: SiteSpec, choice: Choice, error: string): Choice {
    if (choice.use === 'desired') return this.lastGood.get(site.siteId) !== undefined ? { use: 'last-good', error } : { use: 'none', error };
    return { use: 'none', error: choice.use === 'last-good' ? choice.error : error };
  }

  private render(candidates: readonly Candidate[]): ReturnType<typeof renderCaddy> {
    const certificates = new Map(candidates.flatMap((c) => (c.certificate ? [[c.spec.siteId, c.certificate] as const] : [])));
    return renderCaddy(
      { version: 0, sites: candidates.map((c) => c.spec) },
      { adminListen: this.adminListen(), storageRoot: this.layout.storage, address: this.opts.address, httpPort: this.opts.httpPort, httpsPort: this.opts.httpsPort, acmeDir: this.layout.acmeChallenges, certificates },
    );
  }

  /** Which of `candidates` make Caddy refuse its config, each with Caddy's words about it alone (bisection over `caddy validate`). */
  private async culprits(candidates: readonly Candidate[]): Promise<Map<string, string>> {
    const error = await this.caddy.validate(this.render(candidates).config);
    if (error === null) return new Map();
    const [only] = candidates;
    if (candidates.length === 1 && only) return new Map([[only.spec.siteId, error]]);
    const half = Math.ceil(candidates.length / 2);
    return new Map([...(await this.culprits(candidates.slice(0, half))), ...(await this.culprits(candidates.slice(half)))]);
  }

  private async deploy(sites: readonly SiteSpec[], certificates: CertificateFiles): Promise<SiteOutcome[]> {
    const choices = new Map<string, Choice>(sites.map((site) => [site.siteId, { use: 'desired' }]));
    const choiceOf = (site: SiteSpec): Choice => choices.get(site.siteId) ?? { use: 'desired' };
    const fail = (failed: ReadonlyMap<string, string>): void => {
      for (const site of sites) {
        const error = failed.get(site.siteId);
        if (error !== undefined) choices.set(site.siteId, this.fallBack(site, choiceOf(site), error));
      }
    };
    fail(await unresolvableUpstreams(sites));
    for (;;) {
      const candidates = sites.flatMap((site) => this.candidate(site, choiceOf(site), certificates) ?? []);
      const rendered = this.render(candidates);
      if (rendered.rejected.size > 0) {
        fail(rendered.rejected);
        continue;
      }
      try {
        await this.caddy.load(rendered.config);
        break;
      } catch (err) {
        if (!(err instanceof CaddyRefusal)) throw err;
        const found = await this.culprits(candidates);
        // Not one site's fault as far as Caddy says: take every changed site back, and give up if none changed.
        const blamed = found.size > 0 ? found : new Map(sites.filter((site) => choiceOf(site).use === 'desired' && this.changed(site, certificates)).map((site) => [site.siteId, err.message]));
        if (blamed.size === 0) throw new Error(`caddy rejects the node's configuration: ${err.message}`);
        fail(blamed);
      }
    }
    const outcomes: SiteOutcome[] = [];
    for (const site of sites) {
      const choice = choiceOf(site);
      if (choice.use === 'desired') {
        await this.lastGood.set(site);
        const files = certificates.get(site.siteId);
        if (files) await this.lastGoodCerts.set(site.siteId, files);
        else await this.lastGoodCerts.delete(site.siteId);
        outcomes.push({ siteId: site.siteId, version: site.version, status: 'applied' });
      } else {
        const servingVersion = choice.use === 'last-good' ? (this.lastGood.get(site.siteId)?.version ?? null) : null;
        outcomes.push({ siteId: site.siteId, version: site.version, status: 'rejected', error: choice.error, servingVersion });
      }
    }
    return outcomes;
  }

  /** Whether `site` differs from what last served (its spec, or a certificate we cannot compare with the last good copy). */
  private changed(site: SiteSpec, certificates: CertificateFiles): boolean {
    return JSON.stringify(this.lastGood.get(site.siteId)) !== JSON.stringify(site) || certificates.has(site.siteId);
  }
}

/**
 * nginx resolves upstream names when it loads its config and refuses a name
 * that does not resolve; Caddy resolves at each request and would load it and
 * answer 502. Checking at apply time gives both kinds of node the same
 * outcome, in nginx's words, for the same site set.
 */
async function unresolvableUpstreams(sites: readonly SiteSpec[]): Promise<Map<string, string>> {
  const failed = new Map<string, string>();
  await Promise.all(
    sites.map(async (site) => {
      for (const upstream of site.upstreams) {
        if (isIP(upstream.host) !== 0) continue;
        try {
          await lookup(upstream.host);
        } catch {
          failed.set(site.siteId, `host not found in upstream "${upstream.host}:${upstream.port}"`);
          return;
        }
      }
    }),
  );
  return failed;
}
