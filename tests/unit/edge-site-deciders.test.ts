/** The edge site and domain reservation deciders, given/when/then. */
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { fold } from '../../producers/decider.js';
import { domainReservationDecider } from '../../producers/edge/domain-reservation.decider.js';
import { siteDecider, type SiteCommand, type SiteEventKey } from '../../producers/edge/site.decider.js';
import { settingsData, settingsOf, type SiteSettings } from '../../producers/edge/site-settings.js';
import { given } from '../support/decider-spec.js';

type E = DomainEvent<SiteEventKey>;

const at = new Date('2026-12-07T10:00:00Z');
const settings: SiteSettings = {
  domain: 'shop.example.com',
  aliases: ['www.shop.example.com'],
  upstreams: [{ host: '10.0.0.5', port: 8080, weight: 1 }],
  tls: { mode: 'acme' },
  waf: { level: '1' },
  cache: { enabled: true, ttlSeconds: 60, bypass: ['/api/'] },
  access: { allow: [], deny: ['10.0.0.0/8'], blockedCountries: ['CN'] },
  rateLimit: { requestsPerSecond: 10, burst: 20 },
  headers: { 'X-Frame-Options': 'DENY', 'X-B': 'b' },
  nodeLabels: ['eu'],
};
const owner = { userId: 'u1', all: false };
const stranger = { userId: 'u2', all: false };
const operator = { userId: 'op', all: true };
const acting = (requester = owner) => ({ requester, by: `user:${requester.userId}`, at });

const created: E = { type: 'edge.SiteCreated', data: { siteId: 's1', ownerId: 'u1', ...settingsData(settings), by: 'user:u1', createdAt: at } };
const blocked: E = { type: 'edge.SiteBlocked', data: { siteId: 's1', by: 'user:u1', blockedAt: at } };
const deleted: E = { type: 'edge.SiteDeleted', data: { siteId: 's1', by: 'user:u1', deletedAt: at } };
const moved: SiteSettings = { ...settings, domain: 'store.example.com' };

describe('site decider', () => {
  it('creates a site once, owned by its creator', () => {
    const create: SiteCommand = { type: 'Create', siteId: 's1', settings, ...acting() };
    given(siteDecider).when(create).then([created]);
    given(siteDecider, [created]).when(create).thenError('site_exists');
  });

  it('flattens settings into the event and back without loss (headers keep their order)', () => {
    expect(settingsOf(settingsData(settings))).toEqual(settings);
    expect(settingsData(settings).headers).toEqual([
      { name: 'X-Frame-Options', value: 'DENY' },
      { name: 'X-B', value: 'b' },
    ]);
  });

  it('replaces the settings whole; the same settings again record nothing', () => {
    given(siteDecider, [created])
      .when({ type: 'Update', settings: moved, ...acting() })
      .then([{ type: 'edge.SiteUpdated', data: { siteId: 's1', ...settingsData(moved), by: 'user:u1', updatedAt: at } }]);
    given(siteDecider, [created]).when({ type: 'Update', settings, ...acting() }).then([]);
  });

  it('blocks and unblocks, each once', () => {
    given(siteDecider, [created]).when({ type: 'Block', ...acting() }).then([blocked]);
    given(siteDecider, [created]).when({ type: 'Purge', paths: ['/a'], ...acting() }).then([{ type: 'edge.SiteCachePurged', data: { siteId: 's1', paths: ['/a'], by: 'user:u1', purgedAt: at } }]);
    given(siteDecider, [created]).when({ type: 'Purge', paths: [], ...acting(stranger) }).thenError('site_not_found');
    given(siteDecider, [created, blocked]).when({ type: 'Block', ...acting() }).then([]);
    given(siteDecider, [created, blocked]).when({ type: 'Unblock', ...acting() }).then([{ type: 'edge.SiteUnblocked', data: { siteId: 's1', by: 'user:u1', unblockedAt: at } }]);
    given(siteDecider, [created]).when({ type: 'Unblock', ...acting() }).then([]);
  });

  it("refuses another client's site as if it did not exist; operators and admins act on any", () => {
    for (const type of ['Block', 'Unblock', 'Delete'] as const) given(siteDecider, [created]).when({ type, ...acting(stranger) }).thenError('site_not_found');
    given(siteDecider, [created]).when({ type: 'Update', settings: moved, ...acting(stranger) }).thenError('site_not_found');
    given(siteDecider, [created]).when({ type: 'Block', ...acting(operator) }).then([{ ...blocked, data: { ...blocked.data, by: 'user:op' } }]);
  });

  it('a deleted or unknown site accepts nothing', () => {
    given(siteDecider, [created]).when({ type: 'Delete', ...acting() }).then([deleted]);
    given(siteDecider, [created, deleted]).when({ type: 'Delete', ...acting() }).thenError('site_not_found');
    given(siteDecider, [created, deleted]).when({ type: 'Update', settings, ...acting(operator) }).thenError('site_not_found');
    given(siteDecider).when({ type: 'Block', ...acting(operator) }).thenError('site_not_found');
  });

  it('keeps the settings of a deleted site, so its names can be released', () => {
    const state = fold(siteDecider, siteDecider.initialState, [created, deleted]);
    expect(state.deleted).toBe(true);
    expect(state.settings?.domain).toBe('shop.example.com');
  });
});

describe('domain reservation decider', () => {
  const reserved = { type: 'edge.DomainReserved', data: { domain: 'shop.example.com', siteId: 's1', reservedAt: at } } as const;
  const reserve = (siteId: string, takeOverFrom?: string) => ({ type: 'ReserveDomain', domain: 'shop.example.com', siteId, at, takeOverFrom }) as const;
  const release = (siteId: string) => ({ type: 'ReleaseDomain', domain: 'shop.example.com', siteId, at }) as const;

  it('gives a name to the first site; the holder again records nothing; another is refused', () => {
    given(domainReservationDecider).when(reserve('s1')).then([reserved]);
    given(domainReservationDecider, [reserved]).when(reserve('s1')).then([]);
    given(domainReservationDecider, [reserved]).when(reserve('s2')).thenError('domain_taken');
  });

  it('moves a name only from the holder found stale', () => {
    given(domainReservationDecider, [reserved])
      .when(reserve('s2', 's1'))
      .then([{ type: 'edge.DomainReserved', data: { domain: 'shop.example.com', siteId: 's2', reservedAt: at } }]);
    given(domainReservationDecider, [reserved]).when(reserve('s3', 's9')).thenError('domain_taken');
  });

  it('is released by its holder only, and is free after', () => {
    const released = { type: 'edge.DomainReleased', data: { domain: 'shop.example.com', siteId: 's1', releasedAt: at } } as const;
    given(domainReservationDecider, [reserved]).when(release('s2')).then([]);
    given(domainReservationDecider, [reserved]).when(release('s1')).then([released]);
    given(domainReservationDecider, [reserved, released])
      .when(reserve('s2'))
      .then([{ type: 'edge.DomainReserved', data: { domain: 'shop.example.com', siteId: 's2', reservedAt: at } }]);
  });
});
