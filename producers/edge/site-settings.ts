/**
 * A site's settings: what a client chose (SiteSpec without the id, version
 * and block state, plus the labels that pick its nodes), and the flat form
 * SiteCreated / SiteUpdated carry them in. Headers are a record here and in
 * SiteSpec, a list of {name, value} in the log (Avro maps have no order).
 */
import type { EventData } from '../../contracts/catalogue.js';
import type { SiteSpec } from './model.js';

export type SiteSettings = Omit<SiteSpec, 'siteId' | 'version' | 'blocked'> & {
  /** Edge nodes carrying any of these labels serve the site; empty: every edge node. */
  nodeLabels: string[];
};

/** The settings fields of SiteCreated and SiteUpdated (the same in both). */
export type SiteSettingsData = Omit<EventData<'edge.SiteUpdated'>, 'siteId' | 'by' | 'updatedAt'>;

export function settingsData(s: SiteSettings): SiteSettingsData {
  return {
    domain: s.domain,
    aliases: s.aliases,
    upstreams: s.upstreams,
    tlsMode: s.tls.mode,
    wafLevel: s.waf.level,
    cacheEnabled: s.cache.enabled,
    cacheTtlSeconds: s.cache.ttlSeconds,
    cacheBypass: s.cache.bypass,
    accessAllow: s.access.allow,
    accessDeny: s.access.deny,
    blockedCountries: s.access.blockedCountries,
    rateLimit: s.rateLimit,
    headers: Object.entries(s.headers).map(([name, value]) => ({ name, value })),
    nodeLabels: s.nodeLabels,
  };
}

/** Back from the log. The strings were validated before they were written, so they are taken as the types say. */
export function settingsOf(d: SiteSettingsData): SiteSettings {
  return {
    domain: d.domain,
    aliases: d.aliases,
    upstreams: d.upstreams,
    tls: { mode: d.tlsMode as SiteSpec['tls']['mode'] },
    waf: { level: d.wafLevel as SiteSpec['waf']['level'] },
    cache: { enabled: d.cacheEnabled, ttlSeconds: d.cacheTtlSeconds, bypass: d.cacheBypass },
    access: { allow: d.accessAllow, deny: d.accessDeny, blockedCountries: d.blockedCountries },
    rateLimit: d.rateLimit,
    headers: Object.fromEntries(d.headers.map((h) => [h.name, h.value])),
    nodeLabels: d.nodeLabels,
  };
}

/** Every name a site answers to: its domain first, then its aliases. */
export const siteNames = (s: Pick<SiteSettings, 'domain' | 'aliases'>): string[] => [s.domain, ...s.aliases];

/** Whether two settings say the same thing (an update to the same settings records nothing). */
export const sameSettings = (a: SiteSettings, b: SiteSettings): boolean => JSON.stringify(settingsData(a)) === JSON.stringify(settingsData(b));
