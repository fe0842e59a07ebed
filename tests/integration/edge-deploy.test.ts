/**
 * Edge sites deployed to an edge node end to end (docs/edge.md#adding-an-edge-node):
 * real NATS and Postgres, the API, the projectors and the fleet worker, and
 * `relaygrid agent --edge nginx` as a real process (enrolled, on its own NATS
 * credentials) running Debian's nginx on loopback ports in front of a small
 * upstream. A site created through the API is served within seconds and its
 * deployment shows the node at the site's version; an update nginx refuses
 * shows as rejected with nginx's words while the previous version keeps
 * serving; a blocked site answers the block page and reaches nobody.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningApi } from '../../infra/roles/api.js';
import { freePort, LOOPBACK } from '../../infra/stack/ports.js';
import type { SiteDeploymentView, SiteView } from '../../producers/edge/sites.js';
import { BLOCKED_BODY, BLOCKED_STATUS } from '../../workers/edge/nginx/site.js';
import { CLI, sandboxEnv } from '../support/cli.js';
import { fleetStack, type FleetStackWithApi } from '../support/fleet-stack.js';
import { client } from '../support/http.js';
import { eventually } from '../support/isolated.js';

const operator = { actor: 'operator:test' };
const DOMAIN = 'shop.edge-deploy.test';

/** A GET through the edge on a fresh connection, with the site's name as Host. */
function viaEdge(port: number, urlPath = '/', host = DOMAIN): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: LOOPBACK, port, path: urlPath, agent: false, headers: { Host: host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

describe('edge sites on an edge node', () => {
  let stack: FleetStackWithApi;
  let api: RunningApi;
  let call: ReturnType<typeof client>;
  let agent: ChildProcess | undefined;
  const output: string[] = [];
  let upstream: Server;
  let upstreamPort = 0;
  let upstreamHits = 0;
  let httpPort = 0;

  let token = '';
  const site = (upstreams: { host: string; port: number }[], domain = DOMAIN, nodeLabels = ['eu']) => ({ domain, upstreams, tls: { mode: 'off' }, waf: { level: 'off' }, cache: { enabled: false, ttlSeconds: 60 }, nodeLabels });
  const deployments = async (id: string) => (await call<{ deployments: SiteDeploymentView[] }>('GET', `/v1/sites/${id}/deployments`, { token })).body.deployments;

  beforeAll(async () => {
    stack = await fleetStack({ api: true });
    ({ api } = stack);
    call = client(api.url);
    upstream = createServer((_req, res) => {
      upstreamHits++;
      res.end('from the upstream');
    });
    await new Promise<void>((resolve) => upstream.listen(0, LOOPBACK, resolve));
    upstreamPort = (upstream.address() as AddressInfo).port;
    httpPort = await freePort();

    const { nodes } = stack.worker.fleet;
    await nodes.register({ nodeId: 'edge-1', address: LOOPBACK, labels: ['eu'], roles: ['edge'] }, 'api', operator);
    const enrollment = await nodes.issueEnrollmentToken('edge-1', operator);
    const stateDir = join(stack.dir, 'edge-1');
    // --sync-interval 60: within this test only pushes (and the first sync) move the edge.
    const args = ['agent', '--node', 'edge-1', '--state-dir', stateDir, '--enroll', enrollment.token, '--api', api.url, '--sync-interval', '60'];
    args.push('--edge', 'nginx', '--edge-address', LOOPBACK, '--edge-http-port', String(httpPort), '--edge-https-port', String(await freePort()));
    agent = spawn(process.execPath, [CLI, ...args], { env: sandboxEnv(stack.env.config, { LOG_LEVEL: 'warn' }), stdio: ['ignore', 'pipe', 'pipe'] });
    agent.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
    agent.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
    // nginx answers (421: no such site yet) once the agent has started it.
    await eventually(() => viaEdge(httpPort).then((a) => a.status === 421, () => false), 15_000, 100).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\nagent output:\n${output.join('')}`);
    });
    const { userId } = await api.identity.accounts.register({ email: `edge-${Date.now()}@example.org`, password: 'correct horse battery staple', roles: ['client'] }, operator);
    token = api.identity.deps.tokens.issue(userId, crypto.randomUUID(), ['client']);
  }, 40_000);

  afterAll(async () => {
    if (agent && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((resolve) => agent!.once('exit', resolve));
    }
    await new Promise((resolve) => upstream?.close(resolve));
    await stack?.close();
  });

  it('serves a new site within seconds, shows it applied, keeps the last good version when nginx rejects one, and blocks', async () => {

    const created = await call<SiteView>('POST', '/v1/sites', { token, body: site([{ host: LOOPBACK, port: upstreamPort }]) });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const v1 = created.body;
    await eventually(async () => (await viaEdge(httpPort)).body === 'from the upstream', 10_000, 100);
    await eventually(async () => (await deployments(v1.id)).find((d) => d.status === 'applied' && d.appliedVersion === v1.version), 5_000);
    expect((await deployments(v1.id)).map(({ updatedAt: _at, ...d }) => d)).toEqual([{ nodeId: 'edge-1', appliedVersion: v1.version, status: 'applied', error: null }]);

    const broken = await call<SiteView>('PUT', `/v1/sites/${v1.id}`, { token, body: site([{ host: 'nosuch.invalid', port: 80 }]) });
    expect(broken.status, JSON.stringify(broken.body)).toBe(200);
    const rejected = await eventually(async () => (await deployments(v1.id)).find((d) => d.status === 'rejected'), 10_000, 100);
    expect(rejected).toMatchObject({ nodeId: 'edge-1', appliedVersion: v1.version });
    expect(rejected.error).toMatch(/host not found in upstream "nosuch\.invalid/);
    expect(await viaEdge(httpPort)).toEqual({ status: 200, body: 'from the upstream' });

    const blocked = await call<SiteView>('POST', `/v1/sites/${v1.id}/block`, { token });
    expect(blocked.status).toBe(200);
    // A blocked site needs no upstream: the broken one is no obstacle any more.
    await eventually(async () => (await viaEdge(httpPort)).status === BLOCKED_STATUS, 10_000, 100);
    await eventually(async () => (await deployments(v1.id)).find((d) => d.status === 'applied' && d.appliedVersion === blocked.body.version), 5_000);
    const hits = upstreamHits;
    expect(await viaEdge(httpPort, '/anything')).toEqual({ status: BLOCKED_STATUS, body: BLOCKED_BODY });
    expect(upstreamHits).toBe(hits);
  }, 45_000);

  it('serves only the sites its labels select; a deleted site leaves the edge and its deployment rows', async () => {
    const other = (await call<SiteView>('POST', '/v1/sites', { token, body: site([{ host: LOOPBACK, port: upstreamPort }], 'other.edge-deploy.test', ['us']) })).body;
    const mine = (await call<SiteView>('POST', '/v1/sites', { token, body: site([{ host: LOOPBACK, port: upstreamPort }], 'mine.edge-deploy.test') })).body;
    await eventually(async () => (await viaEdge(httpPort, '/', 'mine.edge-deploy.test')).status === 200, 10_000, 100);
    expect((await viaEdge(httpPort, '/', 'other.edge-deploy.test')).status).toBe(421);
    expect(await deployments(other.id)).toEqual([]);

    expect((await call('DELETE', `/v1/sites/${mine.id}`, { token })).status).toBe(200);
    await eventually(async () => (await viaEdge(httpPort, '/', 'mine.edge-deploy.test')).status === 421, 10_000, 100);
    const rows = () => stack.env.rt.db.selectFrom('edge_site_deployments').select('node_id').where('site_id', '=', mine.id).execute();
    await eventually(async () => (await rows()).length === 0, 5_000);
  }, 30_000);
});
