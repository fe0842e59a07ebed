/**
 * The fleet over HTTP against real NATS, Postgres and Redis: nodes
 * (registration, idempotent PUT, drain, retirement, enrollment), profiles
 * (REALITY keys that never leave the fleet context), rollouts and their
 * state machine, subscriptions in every format, and usage statistics.
 */
import { randomUUID } from 'node:crypto';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { uuidv7 } from '../../contracts/ids.js';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { nodeDecider } from '../../producers/fleet/node.decider.js';
import { rolloutDecider } from '../../producers/fleet/rollout.decider.js';
import type { Role } from '../../producers/identity/roles.js';
import { appendTick } from '../../producers/usage/usage-ticks.js';
import { client, type Answer } from '../support/http.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { readLog } from '../support/log.js';
import { testUsers, type TestUsers } from '../support/users.js';
import { createPlan, grantPlan } from '../support/plans.js';

type Node = { nodeId: string; address: string; country: string; labels: string[]; drained: boolean; retired: boolean; enrolled: boolean; health: string; desiredTemplate: string | null; sequence: number; changed?: boolean };
type Profile = { profileId: string; kind: string; port: number; labels: string[]; settings: { publicKey?: string; shortIds?: string[]; fingerprint?: string; serverNames?: string[] }; removed: boolean; sequence: number };
type Rollout = { rolloutId: string; status: string; wave: number; waves: string[][]; targets: { nodeId: string; template: string }[]; sequence: number };
type Bucket = { start: string; uplink: string; downlink: string };
type ErrorBody = { code: string; message: string; field?: string };

const META = { source: 'relaygrid/test', actor: 'operator:test' };
const HOUR_MS = 3_600_000;

describe('fleet over HTTP', () => {
  let env: Isolated;
  let api: RunningApi;
  let projectors: RunningProjectors;
  let users: TestUsers;
  let call: ReturnType<typeof client>;
  let operator: string;
  let n = 0;

  beforeAll(async () => {
    env = await isolated();
    projectors = startProjectors(env.rt);
    api = await startApi(env.rt, { host: '127.0.0.1', readTimeoutMs: 5000 });
    call = client(api.url);
    users = testUsers(env.rt);
    operator = (await signedIn(['operator'])).token;
  });
  afterAll(async () => {
    await api?.close();
    await projectors?.close();
    await env?.cleanup();
  });

  /** A user with the given roles and an access token (no argon2, no proxy credentials). */
  async function signedIn(roles: Role[] = ['client']): Promise<{ id: string; token: string }> {
    const { userId } = await users.register(api.identity.deps.handler, { email: `f${++n}-${uuidv7()}@example.org` }, META);
    return { id: userId, token: api.identity.deps.tokens.issue(userId, uuidv7(), roles) };
  }

  /** A client registered through the accounts service, so they have proxy credentials like any real user. */
  async function proxyUser(): Promise<{ id: string; token: string; seq: number }> {
    const { userId, seq } = await api.identity.accounts.register({ email: `p${++n}-${uuidv7()}@example.org`, password: 'correct horse battery' });
    return { id: userId, token: api.identity.deps.tokens.issue(userId, uuidv7(), ['client']), seq };
  }

  /** Until `projector` has applied `seq` (for writes made around the API). */
  async function projected(projector: string, seq: number): Promise<void> {
    await eventually(async () => ((await env.rt.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', projector).executeTakeFirst())?.seq ?? 0) >= seq);
  }

  function expectStatus<T>(res: Answer<T>, status: number): Answer<T> {
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    return res;
  }

  async function registerNode(nodeId: string, extra: Record<string, unknown> = {}): Promise<Node> {
    return expectStatus(await call<Node>('POST', '/v1/fleet/nodes', { token: operator, body: { nodeId, address: '203.0.113.10', ...extra } }), 201).body;
  }

  async function markHealthy(nodeId: string): Promise<void> {
    const { seq } = await api.fleet.deps.decide(nodeDecider, 'node', nodeId, { type: 'ReportHealth', nodeId, health: 'healthy', reason: 'test', at: new Date() }, { actor: 'test' });
    await projected('fleet', seq);
  }

  /** Plans a rollout and has every node of every wave report success, until it completes. */
  async function rollOutEverything(): Promise<string> {
    const planned = expectStatus(await call<{ rolloutId: string; targets: number }>('POST', '/v1/fleet/rollouts', { token: operator, body: { reason: 'subscription test', waveShare: 1 } }), 201);
    const { rolloutId } = planned.body;
    const subject = api.fleet.deps.subject('rollout', rolloutId);
    for (let round = 0; round < 10; round++) {
      const { state } = await api.fleet.deps.handler.load(rolloutDecider, subject);
      if (state.status !== 'running') break;
      for (const nodeId of state.waves[state.wave] ?? []) {
        const target = state.targets.find((t) => t.nodeId === nodeId);
        if (!target) throw new Error(`no target ${nodeId}`);
        await api.fleet.rollouts.report({ nodeId, template: target.template, version: `v-${target.template.slice(0, 12)}`, rolloutId, outcome: 'applied', restarted: false, error: null });
      }
    }
    await eventually(async () => (await call<Rollout>('GET', `/v1/fleet/rollouts/${rolloutId}`, { token: operator })).body.status === 'completed');
    return rolloutId;
  }

  describe('nodes', () => {
    it('an operator registers a node; the name cannot be taken twice', async () => {
      const node = await registerNode('edge-1', { region: 'eu-central', country: 'de', city: 'Berlin', labels: ['b', 'a', 'a'] });
      expect(node).toMatchObject({ nodeId: 'edge-1', address: '203.0.113.10', country: 'DE', labels: ['a', 'b'], roles: ['proxy'], health: 'unknown', drained: false, retired: false, enrolled: false });
      expect(node.sequence).toBeGreaterThan(0);
      // Visible to the next read without x-min-sequence: the 201 waited for the read model.
      expect(expectStatus(await call<Node>('GET', '/v1/fleet/nodes/edge-1', { token: operator }), 200).body).toMatchObject({ nodeId: 'edge-1', city: 'Berlin' });
      expect((await call<{ nodes: Node[] }>('GET', '/v1/fleet/nodes', { token: operator })).body.nodes.map((x) => x.nodeId)).toContain('edge-1');

      const again = await call<ErrorBody>('POST', '/v1/fleet/nodes', { token: operator, body: { nodeId: 'edge-1', address: '203.0.113.11' } });
      expect(again.status).toBe(409);
      expect(again.body.code).toBe('node_exists');
      expect((await call<ErrorBody>('GET', '/v1/fleet/nodes/nowhere', { token: operator })).body).toMatchObject({ code: 'node_not_found' });
    });

    it('PUT creates or updates, and the same description twice records nothing', async () => {
      const body = { address: 'edge-put.example.net', region: 'us-east', country: 'US', labels: ['x'] };
      const created = expectStatus(await call<Node>('PUT', '/v1/fleet/nodes/edge-put', { token: operator, body }), 200);
      expect(created.body).toMatchObject({ nodeId: 'edge-put', address: 'edge-put.example.net', changed: true });
      const same = expectStatus(await call<Node>('PUT', '/v1/fleet/nodes/edge-put', { token: operator, body }), 200);
      expect(same.body.changed).toBe(false);
      expect(same.body.sequence).toBe(created.body.sequence);
      const subject = env.rt.names.aggregate('fleet', 'node', 'edge-put');
      expect((await readLog(env.rt, subject)).map((e) => e.type)).toEqual(['fleet.NodeRegistered']);

      const moved = expectStatus(await call<Node>('PUT', '/v1/fleet/nodes/edge-put', { token: operator, body: { ...body, city: 'Ashburn' } }), 200);
      expect(moved.body).toMatchObject({ changed: true, city: 'Ashburn' });
      expect(moved.body.sequence).toBeGreaterThan(created.body.sequence);
      expect((await readLog(env.rt, subject)).map((e) => e.type)).toEqual(['fleet.NodeRegistered', 'fleet.NodeUpdated']);
    });

    it('bad input is 400 naming the field', async () => {
      const post = (body: unknown) => call<ErrorBody>('POST', '/v1/fleet/nodes', { token: operator, body });
      expect(expectStatus(await post({ nodeId: 'edge-bad', address: 'not a host!' }), 400).body).toMatchObject({ code: 'invalid_node', field: 'address' });
      expect(expectStatus(await post({ nodeId: 'edge-bad' }), 400).body).toMatchObject({ code: 'invalid_body', field: 'address' });
      expect(expectStatus(await post({ nodeId: 'Edge_Bad', address: '203.0.113.1' }), 400).body).toMatchObject({ field: 'nodeId' });
      expect(expectStatus(await post({ nodeId: 'edge-bad', address: '203.0.113.1', country: 'D1' }), 400).body).toMatchObject({ code: 'invalid_node', field: 'country' });
      expect(expectStatus(await post({ nodeId: 'edge-bad', address: '203.0.113.1', colour: 'red' }), 400).body).toMatchObject({ code: 'invalid_body', field: 'colour' });
      expect(expectStatus(await call<ErrorBody>('PUT', '/v1/fleet/nodes/edge-bad', { token: operator, body: { address: '203.0.113.1', labels: ['UPPER'] } }), 400).body).toMatchObject({ field: 'labels' });
    });

    it('fleet routes are for operators (and admins)', async () => {
      const someone = await signedIn(['client']);
      const admin = await signedIn(['admin']);
      for (const [method, path, body] of [
        ['GET', '/v1/fleet/nodes', undefined],
        ['POST', '/v1/fleet/nodes', { nodeId: 'edge-x', address: '203.0.113.1' }],
        ['POST', '/v1/fleet/profiles', { profileId: 'p-x', kind: 'vless', port: 1000 }],
        ['POST', '/v1/fleet/rollouts', {}],
        ['GET', '/v1/fleet/rollouts', undefined],
      ] as const) {
        expect((await call<ErrorBody>(method, path, { token: someone.token, body })).body, `${method} ${path}`).toMatchObject({ code: 'forbidden' });
      }
      expect((await call('GET', '/v1/fleet/nodes')).status).toBe(401);
      expect((await call('GET', '/v1/fleet/nodes', { token: admin.token })).status).toBe(200);
    });

    it('OpenAPI lists the fleet, usage and subscription routes; the public ones need no token', async () => {
      const docs = await call<{ paths: Record<string, Record<string, { security?: unknown[] }>> }>('GET', '/docs');
      for (const path of ['/v1/fleet/nodes/{id}', '/v1/fleet/nodes/{id}/enrollment-token', '/v1/fleet/profiles/{id}', '/v1/fleet/rollouts/{id}/rollback', '/v1/usage/stats', '/v1/usage/monthly', '/v1/subscription']) {
        expect(docs.body.paths, path).toHaveProperty([path]);
      }
      expect(docs.body.paths['/v1/fleet/enroll']?.['post']?.security).toEqual([]);
      expect(docs.body.paths['/v1/sub/{token}']?.['get']?.security).toEqual([]);
    });

    it('drain, undrain and retire; a retired node refuses changes', async () => {
      await registerNode('edge-old');
      expect(expectStatus(await call<Node>('POST', '/v1/fleet/nodes/edge-old/drain', { token: operator }), 200).body.drained).toBe(true);
      expect(expectStatus(await call<Node>('POST', '/v1/fleet/nodes/edge-old/undrain', { token: operator }), 200).body.drained).toBe(false);
      expect(expectStatus(await call<Node>('POST', '/v1/fleet/nodes/edge-old/retire', { token: operator }), 200).body.retired).toBe(true);
      expect(expectStatus(await call<ErrorBody>('POST', '/v1/fleet/nodes/edge-old/drain', { token: operator }), 409).body.code).toBe('node_retired');
      expect(expectStatus(await call<ErrorBody>('POST', '/v1/fleet/nodes', { token: operator, body: { nodeId: 'edge-old', address: '203.0.113.1' } }), 409).body.code).toBe('node_retired');
      expect(expectStatus(await call<ErrorBody>('POST', '/v1/fleet/nodes/ghost/drain', { token: operator }), 404).body.code).toBe('node_not_found');
    });

    it('an enrollment token is redeemed once for NATS credentials of that node', async () => {
      await registerNode('edge-enroll');
      const issued = expectStatus(await call<{ token: string; expiresAt: string }>('POST', '/v1/fleet/nodes/edge-enroll/enrollment-token', { token: operator }), 201);
      expect(issued.body.token).toMatch(/^edge-enroll\./);
      expect(new Date(issued.body.expiresAt).getTime()).toBeGreaterThan(Date.now());

      const enrolled = expectStatus(await call<{ nodeId: string; nats: { user: string; password: string; inboxPrefix: string } }>('POST', '/v1/fleet/enroll', { body: { token: issued.body.token } }), 200);
      expect(enrolled.body).toMatchObject({ nodeId: 'edge-enroll', nats: { user: 'node-edge-enroll', inboxPrefix: env.rt.names.fleetInbox('edge-enroll') } });
      const row = await env.rt.db.selectFrom('fleet_nodes').select(['nats_user', 'nats_password_hash']).where('id', '=', 'edge-enroll').executeTakeFirstOrThrow();
      expect(row.nats_user).toBe('node-edge-enroll');
      expect(await bcrypt.compare(enrolled.body.nats.password, row.nats_password_hash ?? '')).toBe(true);
      expect((await call<Node>('GET', '/v1/fleet/nodes/edge-enroll', { token: operator })).body.enrolled).toBe(true);

      for (const token of [issued.body.token, `${issued.body.token}x`, 'nosuch-node.abcdef', 'garbage']) {
        const res = await call<ErrorBody>('POST', '/v1/fleet/enroll', { body: { token } });
        expect(res.status, token).toBe(401);
        expect(res.body.code).toBe('invalid_enrollment_token');
      }
    });
  });

  describe('profiles', () => {
    it('a REALITY profile answers its public key and short ids; the private key is nowhere to be seen', async () => {
      const created = expectStatus(
        await call<Profile>('POST', '/v1/fleet/profiles', {
          token: operator,
          body: { profileId: 'reality-main', kind: 'vless-reality', port: 8443, labels: ['profile-test'], settings: { dest: 'www.example.com:443', serverNames: ['www.example.com'] } },
        }),
        201,
      );
      const { publicKey, shortIds } = created.body.settings;
      expect(publicKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(shortIds).toHaveLength(4);
      expect(created.body).toMatchObject({ profileId: 'reality-main', kind: 'vless-reality', port: 8443, labels: ['profile-test'], removed: false, settings: { fingerprint: 'chrome' } });

      const opened = (await api.fleet.profiles.forRendering()).find((p) => p.profileId === 'reality-main');
      const privateKey = opened?.secrets.realityPrivateKey;
      expect(privateKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const one = expectStatus(await call<Profile>('GET', '/v1/fleet/profiles/reality-main', { token: operator }), 200);
      const list = expectStatus(await call<{ profiles: Profile[] }>('GET', '/v1/fleet/profiles', { token: operator }), 200);
      const rows = await env.rt.db.selectFrom('fleet_profiles').selectAll().execute();
      for (const text of [JSON.stringify(created.body), JSON.stringify(one.body), JSON.stringify(list.body), JSON.stringify(rows)]) {
        expect(text).not.toContain(privateKey);
        expect(text.toLowerCase()).not.toContain('privatekey');
      }
      expect(one.body.settings.publicKey).toBe(publicKey);

      expect(expectStatus(await call<ErrorBody>('POST', '/v1/fleet/profiles', { token: operator, body: { profileId: 'reality-main', kind: 'vless', port: 9000 } }), 409).body.code).toBe('profile_exists');
    });

    it('bad profiles are 400 naming the field', async () => {
      const post = (body: unknown) => call<ErrorBody>('POST', '/v1/fleet/profiles', { token: operator, body });
      const reality = { profileId: 'p-bad', kind: 'vless-reality', port: 443, settings: { dest: 'www.example.com:443', serverNames: ['www.example.com'] } };
      expect(expectStatus(await post({ ...reality, settings: { ...reality.settings, publicKey: 'x'.repeat(43) } }), 400).body).toMatchObject({ field: 'settings.publicKey' });
      expect(expectStatus(await post({ ...reality, port: 70_000 }), 400).body).toMatchObject({ field: 'port' });
      expect(expectStatus(await post({ ...reality, kind: 'vmess' }), 400).body).toMatchObject({ field: 'kind' });
      expect(expectStatus(await post({ ...reality, settings: { dest: 'www.example.com:443' } }), 400).body).toMatchObject({ code: 'invalid_profile', field: 'settings.serverNames' });
      expect(expectStatus(await post({ ...reality, kind: 'vless-tls' }), 400).body).toMatchObject({ code: 'invalid_profile', field: 'settings.dest' });
      // The agent's own API inbound is tagged `api`: no profile may take that tag.
      expect(expectStatus(await post({ ...reality, profileId: 'api' }), 400).body).toMatchObject({ code: 'invalid_profile', field: 'profileId' });
      expect(expectStatus(await post({ ...reality, profileId: 'Bad Id' }), 400).body).toMatchObject({ field: 'profileId' });
    });

    it('update keeps the keys, removal hides the profile', async () => {
      const before = (await call<Profile>('GET', '/v1/fleet/profiles/reality-main', { token: operator })).body;
      const updated = expectStatus(
        await call<Profile>('PUT', '/v1/fleet/profiles/reality-main', { token: operator, body: { port: 8444, labels: ['profile-test'], settings: { dest: 'www.example.com:443', serverNames: ['www.example.com', 'example.com'] } } }),
        200,
      );
      expect(updated.body.port).toBe(8444);
      expect(updated.body.settings).toMatchObject({ publicKey: before.settings.publicKey, shortIds: before.settings.shortIds, serverNames: ['www.example.com', 'example.com'] });
      expect(updated.body.sequence).toBeGreaterThan(before.sequence);

      expect(expectStatus(await call('DELETE', '/v1/fleet/profiles/reality-main', { token: operator }), 200).body).toMatchObject({ removed: true });
      expect((await call<{ profiles: Profile[] }>('GET', '/v1/fleet/profiles', { token: operator })).body.profiles.map((p) => p.profileId)).not.toContain('reality-main');
      expect((await call<Profile>('GET', '/v1/fleet/profiles/reality-main', { token: operator })).body.removed).toBe(true);
      expect(expectStatus(await call<ErrorBody>('DELETE', '/v1/fleet/profiles/reality-main', { token: operator }), 404).body.code).toBe('profile_not_found');
      expect(expectStatus(await call<ErrorBody>('PUT', '/v1/fleet/profiles/nope', { token: operator, body: { port: 1 } }), 404).body.code).toBe('profile_not_found');
    });
  });

  describe('rollouts', () => {
    it('plan, pause, resume, abort; moves the state machine does not allow are 409', async () => {
      await registerNode('roll-1');
      expect(expectStatus(await call<ErrorBody>('POST', '/v1/fleet/rollouts', { token: operator, body: { waveShare: 2 } }), 400).body.field).toBe('waveShare');
      const planned = expectStatus(await call<{ rolloutId: string; targets: number; sequence: number }>('POST', '/v1/fleet/rollouts', { token: operator, body: { reason: 'first' } }), 201);
      expect(planned.body.targets).toBeGreaterThanOrEqual(1);
      const id = planned.body.rolloutId;
      expect(expectStatus(await call<ErrorBody>('POST', '/v1/fleet/rollouts', { token: operator }), 409).body.code).toBe('invalid_rollout_state');

      const view = expectStatus(await call<Rollout>('GET', `/v1/fleet/rollouts/${id}`, { token: operator }), 200).body;
      expect(view).toMatchObject({ rolloutId: id, status: 'running', wave: 0, reason: 'first' });
      expect(view.targets.map((t) => t.nodeId)).toContain('roll-1');
      const listed = (await call<{ rollouts: { rolloutId: string; waves: number; nodes: number }[] }>('GET', '/v1/fleet/rollouts', { token: operator })).body.rollouts;
      expect(listed.map((r) => r.rolloutId)).toContain(id);
      expect(listed.find((r) => r.rolloutId === id)).toMatchObject({ waves: view.waves.length, nodes: view.targets.length });

      const act = (action: string) => call<Rollout & ErrorBody>('POST', `/v1/fleet/rollouts/${id}/${action}`, { token: operator });
      expect(expectStatus(await act('pause'), 200).body.status).toBe('paused');
      expect(expectStatus(await act('pause'), 200).body.status).toBe('paused');
      expect(expectStatus(await act('resume'), 200).body.status).toBe('running');
      expect(expectStatus(await act('abort'), 200).body.status).toBe('aborted');
      expect(expectStatus(await act('pause'), 409).body.code).toBe('invalid_rollout_state');
      expect(expectStatus(await act('resume'), 409).body.code).toBe('invalid_rollout_state');
      // Roll-back is allowed after an abort: the canary goes back to what it ran before (nothing yet).
      const canary = view.waves[0]?.[0] ?? '';
      expect((await call<Node>('GET', `/v1/fleet/nodes/${canary}`, { token: operator })).body.desiredTemplate).toBe(view.targets.find((t) => t.nodeId === canary)?.template);
      expect(expectStatus(await act('rollback'), 200).body.status).toBe('rolled_back');
      expect(expectStatus(await act('rollback'), 200).body.status).toBe('rolled_back');
      expect((await call<Node>('GET', `/v1/fleet/nodes/${canary}`, { token: operator })).body.desiredTemplate).toBeNull();
      expect(expectStatus(await act('pause'), 409).body.code).toBe('invalid_rollout_state');

      const unknown = uuidv7();
      expect(expectStatus(await call<ErrorBody>('GET', `/v1/fleet/rollouts/${unknown}`, { token: operator }), 404).body.code).toBe('rollout_not_found');
      expect(expectStatus(await call<ErrorBody>('POST', `/v1/fleet/rollouts/${unknown}/pause`, { token: operator }), 404).body.code).toBe('rollout_not_found');
    });
  });

  describe('subscriptions', () => {
    it('links for healthy nodes in three formats; drained nodes, rotated links and suspended users', async () => {
      const profile = expectStatus(
        await call<Profile>('POST', '/v1/fleet/profiles', {
          token: operator,
          body: { profileId: 'sub-reality', kind: 'vless-reality', port: 443, labels: ['sub'], settings: { dest: 'www.example.com:443', serverNames: ['www.example.com'], flow: 'xtls-rprx-vision' } },
        }),
        201,
      ).body;
      expectStatus(await call('POST', '/v1/fleet/profiles', { token: operator, body: { profileId: 'sub-http', kind: 'http', port: 3128, labels: ['sub'] } }), 201);
      await registerNode('sub-a', { address: '198.51.100.1', city: 'Amsterdam', labels: ['sub'] });
      await registerNode('sub-b', { address: '198.51.100.2', labels: ['sub'] });
      await registerNode('sub-c', { address: '198.51.100.3', labels: ['sub'] });
      await markHealthy('sub-a');
      await markHealthy('sub-b');
      // sub-c stays of unknown health: not offered.
      await rollOutEverything();
      expect((await call<Node>('GET', '/v1/fleet/nodes/sub-c', { token: operator })).body.desiredTemplate).toBeTruthy();

      const user = await proxyUser();
      const mine = expectStatus(await call<{ token: string; url: string }>('GET', '/v1/subscription', { token: user.token, headers: { 'x-min-sequence': String(user.seq) } }), 200).body;
      expect(mine.url).toBe(`/v1/sub/${mine.token}`);
      expect(mine.token).toMatch(new RegExp(`^${user.id}\\.[A-Za-z0-9_-]{22}$`));
      const credentials = await env.rt.db.selectFrom('proxy_credentials').selectAll().where('user_id', '=', user.id).executeTakeFirstOrThrow();
      const privateKey = (await api.fleet.profiles.forRendering()).find((p) => p.profileId === 'sub-reality')?.secrets.realityPrivateKey ?? 'missing';

      const fetchSub = async (url: string, format?: string) => {
        const res = await fetch(`${api.url}${url}${format ? `?format=${format}` : ''}`);
        return { status: res.status, headers: res.headers, text: await res.text() };
      };
      const links = (text: string) => Buffer.from(text, 'base64').toString('utf8').split('\n').filter(Boolean);

      // No subscription yet: the link works and lists nothing.
      const none = await fetchSub(mine.url);
      expect(none.status).toBe(200);
      expect(none.text).toBe('');
      expect(none.headers.get('subscription-userinfo')).toBe('upload=0; download=0; total=0; expire=0');

      // A plan of 1 GiB for 30 days: the header reports the period's usage (metering's), the allowance and the expiry.
      const planId = await createPlan(api.plans, { allowanceBytes: String(2n ** 30n), validity: { kind: 'days', days: 30 } });
      await projected('plans', await grantPlan(api.plans, user.id, planId));
      const subscription = await env.rt.db.selectFrom('subscriptions').select('expires_at').where('user_id', '=', user.id).executeTakeFirstOrThrow();
      const now = new Date();
      const { seq: tickSeq } = await appendTick(api.fleet.deps.handler.store, {
        tickId: randomUUID(), nodeId: 'sub-a', intervalStart: new Date(now.getTime() - 1_000), intervalEnd: now, users: [{ userId: user.id, uplink: 100n, downlink: 200n }],
      });
      await projected('metering', tickSeq);
      const userinfo = `upload=100; download=200; total=${2 ** 30}; expire=${Math.floor(subscription.expires_at!.getTime() / 1000)}`;

      const plain = await fetchSub(mine.url);
      expect(plain.status).toBe(200);
      expect(plain.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(plain.headers.get('subscription-userinfo')).toBe(userinfo);
      expect(plain.headers.get('profile-update-interval')).toBe('12');
      expect(plain.headers.get('content-disposition')).toMatch(/filename="relaygrid\.txt"/);
      const listed = links(plain.text);
      // HTTP profiles have no share link; sub-c is not healthy: one VLESS link per healthy node.
      expect(listed).toHaveLength(2);
      const a = new URL(listed.find((l) => l.includes('198.51.100.1')) ?? '');
      expect(a.protocol).toBe('vless:');
      expect(a.username).toBe(credentials.vless_id);
      expect(a.port).toBe('443');
      expect(Object.fromEntries(a.searchParams)).toMatchObject({
        security: 'reality', sni: 'www.example.com', fp: 'chrome', pbk: profile.settings.publicKey, sid: profile.settings.shortIds?.[0], flow: 'xtls-rprx-vision', type: 'tcp',
      });
      expect(decodeURIComponent(a.hash)).toContain('sub-a (Amsterdam)');
      expect(listed.some((l) => l.includes('198.51.100.2'))).toBe(true);

      const singbox = await fetchSub(mine.url, 'singbox');
      expect(singbox.headers.get('content-type')).toMatch(/^application\/json/);
      const outbounds = (JSON.parse(singbox.text) as { outbounds: { type: string; server?: string; uuid?: string; username?: string; tls?: { reality?: { public_key: string } } }[] }).outbounds;
      expect(outbounds[0]?.type).toBe('selector');
      expect(outbounds.filter((o) => o.type === 'vless').map((o) => o.server).sort()).toEqual(['198.51.100.1', '198.51.100.2']);
      expect(outbounds.find((o) => o.type === 'vless')?.tls?.reality?.public_key).toBe(profile.settings.publicKey);
      expect(outbounds.find((o) => o.type === 'http')?.username).toBe(credentials.proxy_username);

      const clash = await fetchSub(mine.url, 'clash');
      expect(clash.headers.get('content-type')).toMatch(/^text\/yaml/);
      const yaml = parseYaml(clash.text) as { proxies: { type: string; server: string; uuid?: string; 'reality-opts'?: { 'public-key': string } }[]; 'proxy-groups': { proxies: string[] }[] };
      expect(yaml.proxies.filter((p) => p.type === 'vless').map((p) => p.uuid)).toEqual([credentials.vless_id, credentials.vless_id]);
      expect(yaml.proxies.find((p) => p.type === 'vless')?.['reality-opts']?.['public-key']).toBe(profile.settings.publicKey);
      expect(yaml['proxy-groups'][0]?.proxies).toHaveLength(4);

      for (const body of [plain.text, Buffer.from(plain.text, 'base64').toString('utf8'), singbox.text, clash.text]) {
        expect(body).not.toContain(privateKey);
        expect(body).not.toContain('www.example.com:443'); // the REALITY dest is the node's business
      }

      // A plan of HTTP proxies only, on nodes labelled `sub` or `nowhere`: no VLESS endpoint is offered.
      const narrow = await proxyUser();
      await projected('plans', await grantPlan(api.plans, narrow.id, await createPlan(api.plans, { nodeLabels: ['nowhere', 'sub'], inboundKinds: ['http'] })));
      const narrowLink = expectStatus(await call<{ url: string }>('GET', '/v1/subscription', { token: narrow.token, headers: { 'x-min-sequence': String(narrow.seq) } }), 200).body.url;
      expect(links((await fetchSub(narrowLink)).text)).toEqual([]);
      const narrowOutbounds = (JSON.parse((await fetchSub(narrowLink, 'singbox')).text) as { outbounds: { type: string; server?: string }[] }).outbounds;
      expect(narrowOutbounds.filter((o) => o.type !== 'selector').map((o) => `${o.type} ${o.server}`).sort()).toEqual(['http 198.51.100.1', 'http 198.51.100.2']);

      // A drained node leaves everyone's subscription.
      expectStatus(await call('POST', '/v1/fleet/nodes/sub-b/drain', { token: operator }), 200);
      expect(links((await fetchSub(mine.url)).text).map((l) => new URL(l).hostname)).toEqual(['198.51.100.1']);

      // Bad tokens are 404, all alike.
      for (const bad of ['garbage', `${user.id}.${'A'.repeat(22)}`, `${user.id}.${encodeURIComponent('é'.repeat(22))}`, `${uuidv7()}.${mine.token.split('.')[1]}`, `${mine.token}x`]) {
        const res = await fetchSub(`/v1/sub/${bad}`);
        expect(res.status, bad).toBe(404);
        expect((JSON.parse(res.text) as ErrorBody).code).toBe('subscription_not_found');
      }

      // Rotating the credentials outdates the link.
      const rotated = expectStatus(await call<{ sequence: number }>('POST', '/v1/account/proxy-credentials', { token: user.token }), 201);
      const next = expectStatus(await call<{ token: string; url: string }>('GET', '/v1/subscription', { token: user.token, headers: { 'x-min-sequence': String(rotated.body.sequence) } }), 200).body;
      expect(next.token).not.toBe(mine.token);
      expect((await fetchSub(mine.url)).status).toBe(404);
      const renewed = links((await fetchSub(next.url)).text);
      expect(renewed).toHaveLength(1);
      expect(new URL(renewed[0] ?? '').username).not.toBe(credentials.vless_id);

      // A suspended user keeps a working link that lists nothing.
      const suspended = await api.identity.admin.suspend(user.id, 'test', { actor: 'operator:test' });
      await projected('proxy-credentials', suspended);
      const empty = await fetchSub(next.url);
      expect(empty.status).toBe(200);
      expect(empty.text).toBe('');
      expect(empty.headers.get('subscription-userinfo')).toBe(userinfo);
      expect(JSON.parse((await fetchSub(next.url, 'singbox')).text)).toEqual({ outbounds: [] });
      expect((parseYaml((await fetchSub(next.url, 'clash')).text) as { proxies: unknown[] }).proxies).toEqual([]);
    });

    it('no proxy credentials: no link', async () => {
      const bare = await signedIn(['client']);
      expect(expectStatus(await call<ErrorBody>('GET', '/v1/subscription', { token: bare.token }), 404).body.code).toBe('credentials_not_found');
      expect((await call('GET', '/v1/subscription')).status).toBe(401);
    });
  });

  describe('usage', () => {
    it('stats and monthly sums for the owner, operators for anyone else; a tick counts once', async () => {
      const owner = await signedIn(['client']);
      const other = await signedIn(['client']);
      const end = new Date();
      // Past 2^53: the sums must stay exact all the way to the client.
      const big = 9_007_199_254_740_993n;
      const tick = { tickId: randomUUID(), nodeId: 'usage-node', intervalStart: new Date(end.getTime() - 30_000), intervalEnd: end, users: [{ userId: owner.id, uplink: big, downlink: 5n }, { userId: other.id, uplink: 1n, downlink: 2n }] };
      const store = api.fleet.deps.handler.store;
      const first = await appendTick(store, tick);
      const resent = await appendTick(store, tick);
      expect(resent.duplicate).toBe(true);
      // The same tick again past JetStream's duplicate window: a new message id, same tick id.
      const late = await store.append(store.names.aggregate('usage', 'node', tick.nodeId), [{ type: 'usage.UsageTicked', data: tick }], { expectedSeq: null, meta: META, ids: [randomUUID()] });
      expect(late.seq).toBeGreaterThan(first.seq);
      await projected('usage', late.seq);

      const hour = new Date(Math.floor(end.getTime() / HOUR_MS) * HOUR_MS).toISOString();
      const stats = expectStatus(await call<{ buckets: Bucket[] }>('GET', '/v1/usage/stats', { token: owner.token }), 200);
      expect(stats.body.buckets.length).toBeGreaterThanOrEqual(24);
      expect(stats.body.buckets.find((b) => b.start === hour)).toEqual({ start: hour, uplink: big.toString(), downlink: '5' });
      expect(stats.body.buckets.filter((b) => b.start !== hour).every((b) => b.uplink === '0' && b.downlink === '0')).toBe(true);

      const from = new Date(end.getTime() - 2 * 24 * HOUR_MS).toISOString();
      const to = new Date(end.getTime() + HOUR_MS).toISOString();
      const daily = expectStatus(await call<{ buckets: Bucket[] }>('GET', `/v1/usage/stats?granularity=day&from=${from}&to=${to}`, { token: owner.token }), 200);
      const day = `${end.toISOString().slice(0, 10)}T00:00:00.000Z`;
      expect(daily.body.buckets.find((b) => b.start === day)).toEqual({ start: day, uplink: big.toString(), downlink: '5' });

      const month = end.toISOString().slice(0, 7);
      expect(expectStatus(await call('GET', `/v1/usage/monthly?month=${month}`, { token: owner.token }), 200).body).toEqual({ userId: owner.id, month, uplink: big.toString(), downlink: '5', total: (big + 5n).toString() });
      expect((await call('GET', '/v1/usage/monthly?month=2001-01', { token: owner.token })).body).toMatchObject({ uplink: '0', downlink: '0', total: '0' });

      // Someone else's usage, or a node's, is for operators.
      expect(expectStatus(await call<ErrorBody>('GET', `/v1/usage/stats?userId=${owner.id}`, { token: other.token }), 403).body.code).toBe('forbidden');
      expect(expectStatus(await call<ErrorBody>('GET', `/v1/usage/monthly?userId=${owner.id}`, { token: other.token }), 403).body.code).toBe('forbidden');
      expect(expectStatus(await call<ErrorBody>('GET', '/v1/usage/stats?nodeId=usage-node', { token: other.token }), 403).body.code).toBe('forbidden');
      const asOperator = expectStatus(await call<{ buckets: Bucket[] }>('GET', `/v1/usage/stats?userId=${owner.id}`, { token: operator }), 200);
      expect(asOperator.body.buckets.find((b) => b.start === hour)?.uplink).toBe(big.toString());
      expect(expectStatus(await call('GET', `/v1/usage/monthly?userId=${owner.id}&month=${month}`, { token: operator }), 200).body).toMatchObject({ uplink: big.toString() });
      const node = expectStatus(await call<{ buckets: Bucket[] }>('GET', '/v1/usage/stats?nodeId=usage-node', { token: operator }), 200);
      expect(node.body.buckets.find((b) => b.start === hour)).toEqual({ start: hour, uplink: (big + 1n).toString(), downlink: '7' });

      // Ranges are checked and capped.
      const long = new Date(end.getTime() - 100 * 24 * HOUR_MS).toISOString();
      expect(expectStatus(await call<ErrorBody>('GET', `/v1/usage/stats?from=${long}`, { token: owner.token }), 400).body).toMatchObject({ field: 'from' });
      expect(expectStatus(await call<ErrorBody>('GET', `/v1/usage/stats?from=${to}&to=${from}`, { token: owner.token }), 400).body).toMatchObject({ field: 'from' });
      expect(expectStatus(await call<ErrorBody>('GET', '/v1/usage/stats?granularity=week', { token: owner.token }), 400).body).toMatchObject({ field: 'granularity' });
      expect(expectStatus(await call<ErrorBody>('GET', '/v1/usage/monthly?month=2024-13', { token: owner.token }), 400).body).toMatchObject({ field: 'month' });
    });
  });
});
