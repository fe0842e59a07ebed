/**
 * Edge sites over HTTP (docs/edge.md#sites) on real NATS and Postgres: the
 * lifecycle, names unique through reservations under concurrent creates,
 * ownership (another's site is a 404), strict input, and the desired state
 * an edge node would be given by its labels.
 */
import { describe, expect, it } from 'vitest';
import { NAME_TAKEOVER_GRACE_MS } from '../../producers/edge/site-names.js';
import type { SiteView } from '../../producers/edge/sites.js';
import { apiSuite, expectStatus } from '../support/api-suite.js';
import { readLog } from '../support/log.js';

type Written = SiteView & { sequence: number };

describe('edge sites', () => {
  const suite = apiSuite();
  let n = 0;
  /** A site body with a domain of its own (so tests do not meet each other's names). */
  const body = (overrides: Record<string, unknown> = {}) => ({
    domain: `shop${++n}.example.com`,
    upstreams: [{ host: '10.0.0.5', port: 8080 }],
    tls: { mode: 'acme' },
    waf: { level: '1' },
    cache: { enabled: true, ttlSeconds: 60, bypass: ['/api/'] },
    headers: { 'X-Frame-Options': 'DENY' },
    nodeLabels: ['eu'],
    ...overrides,
  });
  const create = async (token: string, site: Record<string, unknown>) => expectStatus(await suite.call<Written>('POST', '/v1/sites', { token, body: site }), 201).body;

  it('creates, lists, views, updates, blocks, unblocks and deletes a site; a deleted site frees its names', async () => {
    const alice = await suite.signedIn();
    const site = await create(alice.token, body({ domain: 'Bücher.example', aliases: ['www.bücher.example'] }));
    expect(site).toMatchObject({
      ownerId: alice.id,
      domain: 'xn--bcher-kva.example',
      aliases: ['www.xn--bcher-kva.example'],
      upstreams: [{ host: '10.0.0.5', port: 8080, weight: 1 }],
      rateLimit: null,
      headers: { 'X-Frame-Options': 'DENY' },
      blocked: false,
      version: site.sequence,
    });

    const listed = expectStatus(await suite.call<{ sites: SiteView[] }>('GET', '/v1/sites', { token: alice.token }), 200).body.sites;
    expect(listed.map((s) => s.id)).toEqual([site.id]);
    expect(expectStatus(await suite.call<SiteView>('GET', `/v1/sites/${site.id}`, { token: alice.token }), 200).body).toEqual({ ...site, sequence: undefined });

    const updated = expectStatus(await suite.call<Written>('PUT', `/v1/sites/${site.id}`, { token: alice.token, body: body({ domain: 'store.example.org', rateLimit: { requestsPerSecond: 50, burst: 100 } }) }), 200).body;
    expect(updated).toMatchObject({ domain: 'store.example.org', aliases: [], rateLimit: { requestsPerSecond: 50, burst: 100 } });
    expect(updated.version).toBeGreaterThan(site.version);
    // The names the update dropped are free: another site takes the old domain at once.
    const bob = await suite.signedIn();
    const taker = await create(bob.token, body({ domain: 'www.bücher.example' }));

    const blocked = expectStatus(await suite.call<Written>('POST', `/v1/sites/${site.id}/block`, { token: alice.token }), 200).body;
    expect(blocked.blocked).toBe(true);
    expect(blocked.version).toBeGreaterThan(updated.version);
    expect(expectStatus(await suite.call<Written>('POST', `/v1/sites/${site.id}/unblock`, { token: alice.token }), 200).body.blocked).toBe(false);

    expectStatus(await suite.call('DELETE', `/v1/sites/${site.id}`, { token: alice.token }), 200);
    expect(expectStatus(await suite.call('GET', `/v1/sites/${site.id}`, { token: alice.token }), 404).body).toMatchObject({ code: 'site_not_found' });
    expectStatus(await suite.call('DELETE', `/v1/sites/${site.id}`, { token: alice.token }), 404);
    // Its domain is free again.
    await create(bob.token, body({ domain: 'store.example.org' }));

    const types = (await readLog(suite.env.rt, suite.env.rt.names.aggregate('edge', 'site', site.id))).map((e) => e.type);
    expect(types).toEqual(['edge.SiteCreated', 'edge.SiteUpdated', 'edge.SiteBlocked', 'edge.SiteUnblocked', 'edge.SiteDeleted']);
    expectStatus(await suite.call('DELETE', `/v1/sites/${taker.id}`, { token: bob.token }), 200);
  });

  it('two concurrent creates of one domain: one 201, one 409 domain_taken; an alias counts like a domain', async () => {
    const [alice, bob] = [await suite.signedIn(), await suite.signedIn()];
    const answers = await Promise.all([alice, bob].map((u) => suite.call<Written>('POST', '/v1/sites', { token: u.token, body: body({ domain: 'race.example.com' }) })));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409]);
    expect(answers.find((a) => a.status === 409)!.body).toMatchObject({ code: 'domain_taken', field: 'domain' });

    // Many at once, names crossing as domain and alias: exactly one holds the contested name.
    const many = await Promise.all(
      Array.from({ length: 8 }, (_, i) => suite.call<Written>('POST', '/v1/sites', { token: alice.token, body: i % 2 ? body({ domain: `a${i}.example.com`, aliases: ['crowd.example.com'] }) : body({ domain: 'crowd.example.com', aliases: [`b${i}.example.com`] }) })),
    );
    expect(many.filter((a) => a.status === 201)).toHaveLength(1);
    expect(many.filter((a) => a.status === 409)).toHaveLength(7);
    // The losers' other names were released: each is free for a new site.
    const others = many.flatMap((a, i) => (a.status === 409 ? [i % 2 ? `a${i}.example.com` : `b${i}.example.com`] : []));
    for (const domain of others) await create(bob.token, body({ domain }));
    const winner = many.find((a) => a.status === 201)!.body;
    expect([winner.domain, ...winner.aliases]).toContain('crowd.example.com');
  });

  it('a claim whose site never came to be blocks its name for the grace period only', async () => {
    const alice = await suite.signedIn();
    const actor = { actor: 'test:stalled-create' };
    // A create that stopped between claiming its names and recording the site.
    await suite.api.sites.names.reserve('stalled-fresh', [{ name: 'fresh.stalled.example', field: 'domain' }], actor, new Date());
    await suite.api.sites.names.reserve('stalled-old', [{ name: 'old.stalled.example', field: 'domain' }], actor, new Date(Date.now() - NAME_TAKEOVER_GRACE_MS - 1000));
    expect(expectStatus(await suite.call('POST', '/v1/sites', { token: alice.token, body: body({ domain: 'fresh.stalled.example' }) }), 409).body).toMatchObject({ code: 'domain_taken', field: 'domain' });
    expect((await create(alice.token, body({ domain: 'old.stalled.example' }))).domain).toBe('old.stalled.example');
  });

  it("a client can neither see nor change another's site; operators and admins see and change all", async () => {
    const [alice, mallory, operator, admin] = [await suite.signedIn(), await suite.signedIn(), await suite.signedIn(['operator']), await suite.signedIn(['admin'])];
    const site = await create(alice.token, body());
    const id = site.id;
    for (const [method, path, payload] of [
      ['GET', `/v1/sites/${id}`, undefined],
      ['GET', `/v1/sites/${id}/deployments`, undefined],
      ['PUT', `/v1/sites/${id}`, body()],
      ['PUT', `/v1/sites/${id}`, { domain: 'not valid' }],
      ['POST', `/v1/sites/${id}/block`, undefined],
      ['POST', `/v1/sites/${id}/unblock`, undefined],
      ['DELETE', `/v1/sites/${id}`, undefined],
    ] as const) {
      const answer = await suite.call(method, path, { token: mallory.token, ...(payload ? { body: payload } : {}) });
      expect(answer.status, `${method} ${path}`).toBe(404);
      expect(answer.body).toMatchObject({ code: 'site_not_found' });
    }
    expect(expectStatus(await suite.call<{ sites: SiteView[] }>('GET', '/v1/sites', { token: mallory.token }), 200).body.sites).toEqual([]);
    expect(expectStatus(await suite.call('GET', `/v1/sites/${id}`, { token: alice.token }), 200).body).toMatchObject({ blocked: false });

    const all = expectStatus(await suite.call<{ sites: SiteView[] }>('GET', '/v1/sites', { token: operator.token }), 200).body.sites;
    expect(all.map((s) => s.id)).toContain(id);
    expect(expectStatus(await suite.call<Written>('POST', `/v1/sites/${id}/block`, { token: operator.token }), 200).body.blocked).toBe(true);
    expectStatus(await suite.call('GET', `/v1/sites/${id}`, { token: admin.token }), 200);
    expect(expectStatus(await suite.call<{ deployments: unknown[] }>('GET', `/v1/sites/${id}/deployments`, { token: alice.token }), 200).body.deployments).toEqual([]);

    // What a node reports (the agent wiring writes this table) is what the owner reads.
    await suite.env.rt.db
      .insertInto('edge_site_deployments')
      .values([
        { site_id: id, node_id: 'edge-1', applied_version: site.version, status: 'applied', error: null, updated_at: new Date() },
        { site_id: id, node_id: 'edge-2', applied_version: null, status: 'rejected', error: 'host not found in upstream', updated_at: new Date() },
      ])
      .execute();
    const deployments = expectStatus(await suite.call<{ deployments: unknown[] }>('GET', `/v1/sites/${id}/deployments`, { token: alice.token }), 200).body.deployments;
    expect(deployments).toMatchObject([
      { nodeId: 'edge-1', appliedVersion: site.version, status: 'applied', error: null },
      { nodeId: 'edge-2', appliedVersion: null, status: 'rejected', error: 'host not found in upstream' },
    ]);
  });

  it('refuses bad input with 400 invalid_site naming the field, and records nothing', async () => {
    const alice = await suite.signedIn();
    const cases: [Record<string, unknown>, string][] = [
      [body({ domain: 'bad_name.example.com' }), 'domain'],
      [body({ aliases: ['ok.example.com', '*.*.example.com'] }), 'aliases[1]'],
      [body({ upstreams: [{ host: '10.0.0.1', port: 70000 }] }), 'upstreams[0].port'],
      [body({ tls: { mode: 'sometimes' } }), 'tls.mode'],
      [body({ waf: { level: 9 } }), 'waf.level'],
      [body({ cache: { enabled: true, ttlSeconds: 0 } }), 'cache.ttlSeconds'],
      [body({ access: { allow: ['10.0.0.0/33'] } }), 'access.allow[0]'],
      [body({ access: { blockedCountries: ['de'] } }), 'access.blockedCountries[0]'],
      [body({ rateLimit: { requestsPerSecond: 0, burst: 0 } }), 'rateLimit.requestsPerSecond'],
      [body({ headers: { 'X-Evil': 'a\r\nSet-Cookie: x=1' } }), 'headers.X-Evil'],
      [body({ headers: { 'Set-Cookie': 'x=1' } }), 'headers.Set-Cookie'],
      [body({ nodeLabels: ['EU'] }), 'nodeLabels[0]'],
      [body({ surprise: true }), 'surprise'],
    ];
    for (const [site, field] of cases) {
      const answer = await suite.call('POST', '/v1/sites', { token: alice.token, body: site });
      expect(answer.status, field).toBe(400);
      expect(answer.body).toMatchObject({ code: 'invalid_site', field });
    }
    expect(expectStatus(await suite.call<{ sites: SiteView[] }>('GET', '/v1/sites', { token: alice.token }), 200).body.sites).toEqual([]);
  });

  it('desiredFor: the sites whose labels meet the node’s, and those with none, as SiteSpecs at their versions', async () => {
    const owner = await suite.signedIn(['operator']);
    const everywhere = await create(owner.token, body({ domain: 'all.desired.example', nodeLabels: [] }));
    const eu = await create(owner.token, body({ domain: 'eu.desired.example', nodeLabels: ['eu-west'], headers: { 'X-Zulu': 'z', 'X-Frame-Options': 'DENY', 'X-Alpha': 'a' } }));
    const us = await create(owner.token, body({ domain: 'us.desired.example', nodeLabels: ['us-east', 'us'] }));
    const blocked = expectStatus(await suite.call<Written>('POST', `/v1/sites/${us.id}/block`, { token: owner.token }), 200).body;
    const ids = async (labels: string[]) => (await suite.api.sites.desiredFor(labels)).filter((s) => s.domain.endsWith('.desired.example'));

    const forEu = await ids(['eu-west', 'fast']);
    expect(forEu.map((s) => s.siteId)).toEqual([everywhere.id, eu.id]);
    expect(forEu[1]).toEqual({
      siteId: eu.id,
      version: eu.version,
      domain: 'eu.desired.example',
      aliases: [],
      upstreams: [{ host: '10.0.0.5', port: 8080, weight: 1 }],
      tls: { mode: 'acme' },
      waf: { level: '1' },
      cache: { enabled: true, ttlSeconds: 60, bypass: ['/api/'] },
      access: { allow: [], deny: [], blockedCountries: [] },
      rateLimit: null,
      headers: { 'X-Zulu': 'z', 'X-Frame-Options': 'DENY', 'X-Alpha': 'a' },
      blocked: false,
      cachePurge: { generation: 0, paths: [] },
    });
    // In the order given (SiteSpec's record; the rendered add_header lines follow it).
    expect(Object.keys(forEu[1]!.headers)).toEqual(['X-Zulu', 'X-Frame-Options', 'X-Alpha']);
    const forUs = await ids(['us']);
    expect(forUs.map((s) => [s.siteId, s.blocked, s.version])).toEqual([
      [everywhere.id, false, everywhere.version],
      [us.id, true, blocked.version],
    ]);
    expect((await ids([])).map((s) => s.siteId)).toEqual([everywhere.id]);

    // A purge is part of what nodes are given: paths get the purge's sequence, a whole-site purge a new generation.
    const byPath = expectStatus(await suite.call<Written>('POST', `/v1/sites/${eu.id}/purge`, { token: owner.token, body: { paths: ['/a?x=1'] } }), 200).body;
    expect((await ids(['eu-west'])).find((s) => s.siteId === eu.id)).toMatchObject({ version: byPath.sequence, cachePurge: { generation: 0, paths: [{ path: '/a?x=1', generation: byPath.sequence }] } });
    const whole = expectStatus(await suite.call<Written>('POST', `/v1/sites/${eu.id}/purge`, { token: owner.token, body: {} }), 200).body;
    expect((await ids(['eu-west'])).find((s) => s.siteId === eu.id)?.cachePurge).toEqual({ generation: whole.sequence, paths: [] });
    expectStatus(await suite.call('POST', `/v1/sites/${eu.id}/purge`, { token: owner.token, body: { paths: ['no-slash'] } }), 400);
    const stranger = await suite.signedIn();
    expectStatus(await suite.call('POST', `/v1/sites/${eu.id}/purge`, { token: stranger.token, body: {} }), 404);
  });
});
