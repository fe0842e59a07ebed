/**
 * An edge node's per-site metrics (docs/edge.md#observability), labelled by
 * site id and node. Cardinality: about 30 series per site (5 status classes
 * twice, 7 cache states, 9 histogram series, 4 single ones) on each node; a
 * site the node stops serving loses its series at the next collection.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const SITE = ['site', 'node'] as const;

export class EdgeMetrics {
  readonly requests: Counter<'site' | 'node' | 'status_class'>;
  readonly sentBytes: Counter<'site' | 'node' | 'status_class'>;
  readonly receivedBytes: Counter<'site' | 'node'>;
  readonly upstreamErrors: Counter<'site' | 'node'>;
  readonly upstreamSeconds: Histogram<'site' | 'node'>;
  readonly cacheRequests: Counter<'site' | 'node' | 'cache'>;
  readonly wafBlocks: Counter<'site' | 'node'>;
  readonly certificateNotAfter: Gauge<'site' | 'node'>;

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry];
    this.requests = new Counter({ name: 'relaygrid_edge_requests_total', help: 'Requests a site answered on this node, by status class (1xx-5xx)', labelNames: [...SITE, 'status_class'], registers });
    this.sentBytes = new Counter({ name: 'relaygrid_edge_sent_bytes_total', help: 'Bytes a site sent to clients (headers included), by status class', labelNames: [...SITE, 'status_class'], registers });
    this.receivedBytes = new Counter({ name: 'relaygrid_edge_received_bytes_total', help: 'Bytes of requests to a site (request line and headers included)', labelNames: SITE, registers });
    this.upstreamErrors = new Counter({ name: 'relaygrid_edge_upstream_errors_total', help: 'Requests with an upstream attempt that failed: no connection, a timeout, or a 5xx answer', labelNames: SITE, registers });
    this.upstreamSeconds = new Histogram({ name: 'relaygrid_edge_upstream_response_seconds', help: 'Time spent on upstreams per request that reached one (every attempt summed)', labelNames: SITE, buckets: [0.005, 0.025, 0.1, 0.25, 1, 2.5, 10], registers });
    this.cacheRequests = new Counter({ name: 'relaygrid_edge_cache_requests_total', help: 'Requests of a site with a cache, by cache status (HIT, MISS, BYPASS, EXPIRED, STALE, UPDATING, REVALIDATED); hit ratio = HIT / all', labelNames: [...SITE, 'cache'], registers });
    this.wafBlocks = new Counter({ name: 'relaygrid_edge_waf_blocks_total', help: 'Requests the WAF (ModSecurity) refused', labelNames: SITE, registers });
    this.certificateNotAfter = new Gauge({ name: 'relaygrid_edge_certificate_not_after_seconds', help: "Unix time at which the certificate a site's server block uses on this node expires (notAfter)", labelNames: SITE, registers });
  }

  /** Drops every series of the sites not in `served`. */
  async forgetAllBut(served: ReadonlySet<string>): Promise<void> {
    for (const metric of [this.requests, this.sentBytes, this.receivedBytes, this.upstreamErrors, this.upstreamSeconds, this.cacheRequests, this.wafBlocks, this.certificateNotAfter]) {
      const { values } = await metric.get();
      for (const { labels } of values) {
        const site = labels['site'];
        // A histogram's _bucket series carry `le`, which remove() does not take.
        const { le: _le, ...own } = labels as Record<string, string | number>;
        if (typeof site === 'string' && !served.has(site)) metric.remove(own as never);
      }
    }
  }
}
