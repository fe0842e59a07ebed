/**
 * The traffic log: every request of a site as one JSON line (`log_format
 * edge_traffic escape=json`), which the agent reads into per-site metrics and
 * traffic ticks (./traffic-log.ts). The site is `$edge_site`, set first
 * thing in each server block from the (grammar-checked) site id, so a line
 * names the site nginx chose, whatever the Host header said. Every value is a
 * JSON string: nginx writes `-` or nothing for a variable it has no value for.
 */

export const TRAFFIC_LOG_FORMAT = 'edge_traffic';
/** The variable each server sets to its site id (site.ts). */
export const SITE_VARIABLE = '$edge_site';

/** JSON key → nginx variable. */
export const TRAFFIC_FIELDS = {
  site: SITE_VARIABLE,
  status: '$status',
  /** Bytes sent to the client, headers included. */
  sent: '$bytes_sent',
  /** Bytes of the request, line and headers included. */
  received: '$request_length',
  /** Each upstream tried, comma-separated (`502, 200`); empty when none was. */
  upstreamStatus: '$upstream_status',
  /** Seconds per upstream tried, in the same order. */
  upstreamTime: '$upstream_response_time',
  /** HIT, MISS, BYPASS, EXPIRED, STALE, UPDATING, REVALIDATED; empty without a cache. */
  cache: '$upstream_cache_status',
} as const;

export type TrafficLine = Record<keyof typeof TRAFFIC_FIELDS, string>;

/** The format's text (our own, no user input): `{"site":"$edge_site",…}`. */
export function trafficLogFormat(): string {
  return `{${Object.entries(TRAFFIC_FIELDS).map(([key, variable]) => `"${key}":"${variable}"`).join(',')}}`;
}
