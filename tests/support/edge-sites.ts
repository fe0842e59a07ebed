/** SiteSpec fixtures for the edge driver tests. */
import type { SiteSpec } from '../../producers/edge/model.js';

export function siteSpec(siteId: string, overrides: Partial<SiteSpec> = {}): SiteSpec {
  return {
    siteId,
    version: 1,
    domain: `${siteId}.test`,
    aliases: [],
    upstreams: [{ host: '127.0.0.1', port: 9, weight: 1 }],
    tls: { mode: 'off' },
    waf: { level: 'off' },
    cache: { enabled: false, ttlSeconds: 60, bypass: [] },
    access: { allow: [], deny: [], blockedCountries: [] },
    rateLimit: null,
    headers: {},
    blocked: false,
    ...overrides,
  };
}
