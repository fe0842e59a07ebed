/**
 * What an edge node's agent makes of its edge's logs, every interval
 * (docs/edge.md#observability): each request and WAF refusal counted into
 * the node's metrics (./edge-metrics.ts) and into one interval's per-site
 * counts, spooled as a traffic tick (usage.SiteTrafficTicked) and sent as
 * `edge-traffic` until the fleet took it; and the notAfter of every
 * certificate file the edge's sites use, as a gauge.
 */
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../../infra/logger.js';
import { siteTrafficTicksOf, zeroCounts, type SiteTrafficWire, type TrafficCounts } from '../../../producers/usage/site-traffic-ticks.js';
import type { EdgeTrafficRead, RequestRecord } from '../../edge/nginx/traffic-log.js';
import type { EdgeMetrics } from './edge-metrics.js';
import { Spool } from '../spool.js';

/** What an edge offers to be observed (NginxEdge has it; Caddy does not yet). */
export interface ObservableEdge {
  readTraffic(): Promise<EdgeTrafficRead>;
  /** Site id → the certificate file its server uses. */
  certificateFiles(): ReadonlyMap<string, string>;
  /** The sites it serves. */
  servedSites(): ReadonlySet<string>;
}

const HITS = new Set(['HIT', 'STALE', 'UPDATING', 'REVALIDATED']);
const MISSES = new Set(['MISS', 'EXPIRED']);

function countRequest(counts: TrafficCounts, r: RequestRecord): void {
  const klass = Math.floor(r.status / 100);
  if (klass >= 1 && klass <= 5) counts[`requests${klass}xx` as 'requests2xx'] += 1n;
  counts.sentBytes += r.sentBytes;
  counts.receivedBytes += r.receivedBytes;
  if (r.cache !== null && HITS.has(r.cache)) counts.cacheHits += 1n;
  if (r.cache !== null && MISSES.has(r.cache)) counts.cacheMisses += 1n;
  if (r.cache === 'BYPASS') counts.cacheBypasses += 1n;
  if (r.upstreamSeconds !== null) {
    counts.upstreamRequests += 1n;
    counts.upstreamMillis += BigInt(Math.round(r.upstreamSeconds * 1000));
  }
  if (r.upstreamError) counts.upstreamErrors += 1n;
}

/** The certificate's notAfter in Unix seconds; null for a file that holds none. */
export async function certificateNotAfter(file: string): Promise<number | null> {
  try {
    const cert = new X509Certificate(await readFile(file));
    const ms = Date.parse(cert.validTo);
    return Number.isNaN(ms) ? null : ms / 1000;
  } catch {
    return null;
  }
}

export interface EdgeTrafficOptions {
  edge: ObservableEdge;
  nodeId: string;
  metrics: EdgeMetrics;
  spoolPath: string;
  log: Logger;
}

export class EdgeTraffic {
  readonly spool: Spool<SiteTrafficWire>;
  private intervalStart = new Date();

  constructor(private readonly o: EdgeTrafficOptions) {
    this.spool = new Spool(o.spoolPath, (t) => t.tickId);
  }

  async load(): Promise<void> {
    await this.spool.load();
  }

  /** Reads the edge's logs into the metrics and spools the interval's ticks (none for a quiet interval). */
  async collect(): Promise<void> {
    const { edge, metrics, nodeId } = this.o;
    const read = await edge.readTraffic();
    const end = new Date();
    const bySite = new Map<string, TrafficCounts>();
    const of = (siteId: string) => bySite.get(siteId) ?? bySite.set(siteId, zeroCounts()).get(siteId)!;
    for (const r of read.requests) {
      const site = { site: r.siteId, node: nodeId };
      const statusClass = `${Math.floor(r.status / 100)}xx`;
      metrics.requests.inc({ ...site, status_class: statusClass });
      metrics.sentBytes.inc({ ...site, status_class: statusClass }, Number(r.sentBytes));
      metrics.receivedBytes.inc(site, Number(r.receivedBytes));
      if (r.cache !== null) metrics.cacheRequests.inc({ ...site, cache: r.cache });
      if (r.upstreamSeconds !== null) metrics.upstreamSeconds.observe(site, r.upstreamSeconds);
      if (r.upstreamError) metrics.upstreamErrors.inc(site);
      countRequest(of(r.siteId), r);
    }
    for (const [siteId, blocks] of read.wafBlocks) {
      metrics.wafBlocks.inc({ site: siteId, node: nodeId }, blocks);
      of(siteId).wafBlocks += BigInt(blocks);
    }
    await this.refreshCertificates();
    await metrics.forgetAllBut(edge.servedSites());
    const start = this.intervalStart;
    this.intervalStart = end;
    for (const tick of siteTrafficTicksOf(bySite, start, end)) await this.spool.add(tick);
  }

  async refreshCertificates(): Promise<void> {
    for (const [siteId, file] of this.o.edge.certificateFiles()) {
      const notAfter = await certificateNotAfter(file);
      if (notAfter === null) this.o.log.warn({ siteId, file }, 'no certificate readable in the file a site uses');
      else this.o.metrics.certificateNotAfter.set({ site: siteId, node: this.o.nodeId }, notAfter);
    }
  }
}
