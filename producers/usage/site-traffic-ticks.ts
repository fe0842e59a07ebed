/**
 * Edge nodes' per-site traffic ticks (usage.SiteTrafficTicked), the edge's
 * counterpart of usage-ticks.ts: the agent folds what its edge logged in one
 * interval into one tick (spooled, sent as `edge-traffic`), the fleet checks
 * it and appends it without an expectation, the tick id as the event id.
 */
import type { SiteTrafficTickedV1, SiteTrafficV1 } from '../../contracts/catalogue.generated.js';
import { uuidv7 } from '../../contracts/ids.js';
import { DomainError } from '../decider.js';
import type { EventStore } from '../event-store/event-store.js';
import type { TrafficColumn } from '../../schema/database.js';
import { isUuid } from './usage-ticks.js';

/** Every count of a site's traffic, in the event's order. */
export const TRAFFIC_COUNTS = [
  'requests1xx', 'requests2xx', 'requests3xx', 'requests4xx', 'requests5xx',
  'sentBytes', 'receivedBytes', 'cacheHits', 'cacheMisses', 'cacheBypasses',
  'wafBlocks', 'upstreamRequests', 'upstreamErrors', 'upstreamMillis',
] as const;
export type TrafficCount = (typeof TRAFFIC_COUNTS)[number];
export type TrafficCounts = Record<TrafficCount, bigint>;

/** Sites per tick: about 450 bytes of JSON each, far under NATS's max_payload at 1,000. */
export const MAX_SITES_PER_TICK = 1_000;

/** A tick on the wire: counts as decimal strings (bytes are exact 64-bit), times as ISO strings. */
export interface SiteTrafficWire {
  tickId: string;
  intervalStart: string;
  intervalEnd: string;
  sites: ({ siteId: string } & Record<TrafficCount, string>)[];
}

/** A count's column in edge_site_traffic: requests2xx → requests_2xx, sentBytes → sent_bytes. */
export const trafficColumn = (count: TrafficCount): TrafficColumn => count.replace(/(\d)/, '_$1').replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) as TrafficColumn;

export const zeroCounts = (): TrafficCounts => Object.fromEntries(TRAFFIC_COUNTS.map((k) => [k, 0n])) as TrafficCounts;

/** One interval's counts per site as the ticks an agent spools (at most MAX_SITES_PER_TICK sites each); none for a quiet interval. */
export function siteTrafficTicksOf(traffic: ReadonlyMap<string, TrafficCounts>, start: Date, end: Date): SiteTrafficWire[] {
  const sites = [...traffic].map(([siteId, counts]) => ({ siteId, ...(Object.fromEntries(TRAFFIC_COUNTS.map((k) => [k, counts[k].toString()])) as Record<TrafficCount, string>) }));
  const ticks: SiteTrafficWire[] = [];
  for (let i = 0; i < sites.length; i += MAX_SITES_PER_TICK) {
    ticks.push({ tickId: uuidv7(end.getTime()), intervalStart: start.toISOString(), intervalEnd: end.toISOString(), sites: sites.slice(i, i + MAX_SITES_PER_TICK) });
  }
  return ticks;
}

const invalid = (message: string, field: string) => new DomainError('invalid_tick', message, { field });

function count(field: string, value: unknown): bigint {
  if (typeof value !== 'string' || !/^\d{1,19}$/.test(value)) throw invalid(`${field}: must be a whole number, as a decimal string`, field);
  const n = BigInt(value);
  if (n > 0x7fff_ffff_ffff_ffffn) throw invalid(`${field}: beyond a 64-bit count`, field);
  return n;
}

/** Checks a tick from the wire; the node id comes from the subject, never from the body. */
export function parseSiteTrafficTick(nodeId: string, wire: SiteTrafficWire): SiteTrafficTickedV1 {
  if (typeof wire?.tickId !== 'string' || !isUuid(wire.tickId)) throw invalid('tickId: must be a UUID', 'tickId');
  const start = new Date(wire.intervalStart);
  const end = new Date(wire.intervalEnd);
  if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) throw invalid('intervalStart, intervalEnd: must be ISO times, start before end', 'intervalEnd');
  if (!Array.isArray(wire.sites) || wire.sites.length > MAX_SITES_PER_TICK) throw invalid(`sites: at most ${MAX_SITES_PER_TICK} per tick`, 'sites');
  const sites = wire.sites.map((s, i): SiteTrafficV1 => {
    if (typeof s?.siteId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(s.siteId)) throw invalid(`sites.${i}.siteId: must be a site id`, `sites.${i}.siteId`);
    const counts = Object.fromEntries(TRAFFIC_COUNTS.map((k) => [k, count(`sites.${i}.${k}`, s[k])])) as TrafficCounts;
    return { siteId: s.siteId, ...counts };
  });
  return { tickId: wire.tickId, nodeId, intervalStart: start, intervalEnd: end, sites };
}

export async function appendSiteTrafficTick(store: EventStore, tick: SiteTrafficTickedV1): Promise<{ seq: number; duplicate: boolean }> {
  const result = await store.append(store.names.aggregate('usage', 'edge', tick.nodeId), [{ type: 'usage.SiteTrafficTicked', data: tick }], {
    expectedSeq: null,
    meta: { source: 'relaygrid/fleet', actor: `node:${tick.nodeId}` },
    ids: [tick.tickId],
    time: tick.intervalEnd,
  });
  return { seq: result.seq, duplicate: result.duplicate };
}
