/**
 * ACME issuance for edge sites against Debian's pebble (RFC 8555 test CA),
 * all on loopback: two nginx edge nodes (127.0.0.1 and 127.0.0.2, same
 * ports) serve shop.test; one order, whose HTTP-01 token is written to both
 * nodes' challenge directories, gives one certificate that both install;
 * a renewal is validated through the other node and re-applied under a
 * request loop with no failed request; the certificate store round-trips
 * it sealed in NATS.
 *
 * pebble validates on `httpPort` = the nodes' HTTP port, and resolves names
 * through pebble-challtestsrv's mock DNS (every A query answers 127.0.0.1
 * unless told otherwise).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import { Objm } from '@nats-io/obj';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../infra/logger.js';
import { freePort } from '../../infra/stack/ports.js';
import type { SiteSpec } from '../../producers/edge/model.js';
import { AcmeIssuer, newAccountKeyPem, trustAcmeDirectoryCa, type IssuedCertificate } from '../../producers/edge/acme/acme-issuer.js';
import { CertificateStore } from '../../producers/edge/acme/certificate-store.js';
import { DirectoryChallengePublisher, type ChallengePublisher } from '../../producers/edge/acme/challenge-publisher.js';
import { renewalDueAt } from '../../producers/edge/acme/renewal.js';
import { NginxEdge, type Certificates } from '../../workers/edge/nginx/apply.js';
import { siteSpec } from '../support/edge-sites.js';
import { isolated, type Isolated } from '../support/isolated.js';

const execFileAsync = promisify(execFile);
const NODES = ['127.0.0.1', '127.0.0.2'] as const;
const DOMAIN = 'shop.test';

interface Answer {
  status: number;
  body: string;
  serial?: string;
}

/** One plain-HTTP request on its own connection (to the mock DNS's management API or a node's port 80 equivalent). */
function http(opts: { host: string; port: number; path: string; method?: string; hostHeader?: string; body?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: opts.host, port: opts.port, path: opts.path, method: opts.method ?? 'GET', agent: false, headers: { Host: opts.hostHeader ?? opts.host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** A GET over TLS with SNI `servername`, trusting only `ca`, on its own connection; answers the served certificate's serial. */
function https(opts: { host: string; port: number; path: string; servername: string; ca: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: opts.host, port: opts.port, path: opts.path, servername: opts.servername, ca: opts.ca, agent: false, headers: { Host: opts.servername } }, (res) => {
      const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, serial }));
    });
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A throwaway CA and, signed by it, pebble's listener certificate for 127.0.0.1 and localhost. */
function listenerCertificate(dir: string): { caPath: string; certPath: string; keyPath: string } {
  const at = (name: string) => path.join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', at('ca.key'), '-out', at('ca.crt'), '-days', '1', '-subj', '/CN=edge-acme test CA');
  openssl('req', ...ec, '-keyout', at('pebble.key'), '-out', at('pebble.csr'), '-subj', '/CN=localhost');
  writeFileSync(at('pebble.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  openssl('x509', '-req', '-in', at('pebble.csr'), '-CA', at('ca.crt'), '-CAkey', at('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', at('pebble.ext'), '-out', at('pebble.crt'));
  return { caPath: at('ca.crt'), certPath: at('pebble.crt'), keyPath: at('pebble.key') };
}

function run(binary: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  const child = spawn(binary, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-4_000));
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', (code) => {
    if (code !== null && code !== 0) console.error(`${binary} exited ${code}: ${output}`);
  });
  return child;
}

const dir = mkdtempSync(path.join(tmpdir(), 'edge-acme-'));
const children: ChildProcess[] = [];
const edges: NginxEdge[] = [];
let upstream: Server;
let sandbox: Isolated;
let httpPort = 0;
let httpsPort = 0;
let dnsManagement = 0;
let directoryUrl = '';
/** pebble's issuing root (regenerated at every start of pebble). */
let pebbleRoot = '';
let site: SiteSpec;

/** Writes the certificate for every node (each holds its own copy, as nodes on other hosts would) and applies it. */
async function install(cert: IssuedCertificate, generation: number): Promise<void> {
  await Promise.all(
    edges.map(async (edge, i) => {
      const certDir = path.join(dir, `certs-${i}`);
      mkdirSync(certDir, { recursive: true });
      const certPath = path.join(certDir, `${site.siteId}-${generation}.crt`);
      const keyPath = path.join(certDir, `${site.siteId}-${generation}.key`);
      writeFileSync(certPath, cert.certificatePem);
      writeFileSync(keyPath, cert.privateKeyPem, { mode: 0o600 });
      const certificates: Certificates = new Map([[site.siteId, { certPath, keyPath }]]);
      const outcomes = await edge.apply({ version: generation, sites: [site] }, certificates);
      expect(outcomes).toEqual([{ siteId: site.siteId, version: site.version, status: 'applied' }]);
    }),
  );
}

/** Whether the CA itself (pebble's VA, by its User-Agent) fetched `token` from node `i`. */
function caFetched(i: number, token: string): boolean {
  return readFileSync(edges[i]?.paths.accessLog ?? '', 'utf8')
    .split('\n')
    .some((line) => line.includes(`/.well-known/acme-challenge/${token} `) && line.includes('LetsEncrypt-Pebble-VA'));
}

/** Publishes through `inner` and, before the CA is told to look, checks every node answers the token. */
function checkingPublisher(inner: ChallengePublisher, published: string[]): ChallengePublisher {
  return {
    async publish(token, keyAuthorization) {
      await inner.publish(token, keyAuthorization);
      published.push(token);
      for (const node of NODES) {
        const answer = await http({ host: node, port: httpPort, path: `/.well-known/acme-challenge/${token}`, hostHeader: DOMAIN });
        expect(answer, `node ${node}`).toEqual({ status: 200, body: keyAuthorization });
      }
    },
    unpublish: (token) => inner.unpublish(token),
  };
}

function masterKey(): Buffer {
  const key = sandbox.config.masterKey;
  if (!key) throw new Error('the sandbox has no RG_MASTER_KEY');
  return key;
}

/** curl, asynchronously: the upstream answering it runs in this process. */
async function curl(node: string): Promise<string> {
  const { stdout } = await execFileAsync('curl', ['-sS', '--fail', '--cacert', path.join(dir, 'pebble-root.pem'), '--resolve', `${DOMAIN}:${httpsPort}:${node}`, `https://${DOMAIN}:${httpsPort}/`], { encoding: 'utf8', timeout: 10_000 });
  return stdout;
}

beforeAll(async () => {
  upstream = createServer((req, res) => res.end(`shop upstream ${req.url ?? ''}`));
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const upstreamPort = (upstream.address() as AddressInfo).port;
  [httpPort, httpsPort, dnsManagement] = [await freePort(), await freePort(), await freePort()];
  const [dnsPort, pebblePort, pebbleManagement, tlsAlpnPort] = [await freePort(), await freePort(), await freePort(), await freePort()];

  children.push(
    run('/usr/bin/pebble-challtestsrv', ['-dns01', `127.0.0.1:${dnsPort}`, '-http01', '', '-https01', '', '-tlsalpn01', '', '-management', `127.0.0.1:${dnsManagement}`, '-defaultIPv4', '127.0.0.1', '-defaultIPv6', '']),
  );
  const listener = listenerCertificate(dir);
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${pebblePort}`,
      managementListenAddress: `127.0.0.1:${pebbleManagement}`,
      certificate: listener.certPath,
      privateKey: listener.keyPath,
      httpPort,
      tlsPort: tlsAlpnPort,
      ocspResponderURL: '',
      externalAccountBindingRequired: false,
    },
  };
  writeFileSync(path.join(dir, 'pebble.json'), JSON.stringify(config));
  // No sleeps, real validation, no random nonce rejections, and no reuse of valid authorizations: a renewal validates again.
  const pebbleEnv = { PEBBLE_VA_NOSLEEP: '1', PEBBLE_VA_ALWAYS_VALID: '0', PEBBLE_WFE_NONCEREJECT: '0', PEBBLE_AUTHZREUSE: '0' };
  children.push(run('/usr/bin/pebble', ['-config', path.join(dir, 'pebble.json'), '-dnsserver', `127.0.0.1:${dnsPort}`], pebbleEnv));

  const ca = readFileSync(listener.caPath, 'utf8');
  trustAcmeDirectoryCa(ca);
  directoryUrl = `https://127.0.0.1:${pebblePort}/dir`;
  await until(async () => (await https({ host: '127.0.0.1', port: pebblePort, path: '/dir', servername: 'localhost', ca })).status === 200, 'pebble listening');
  pebbleRoot = (await https({ host: '127.0.0.1', port: pebbleManagement, path: '/roots/0', servername: 'localhost', ca })).body;
  writeFileSync(path.join(dir, 'pebble-root.pem'), pebbleRoot);
  await until(async () => (await http({ host: '127.0.0.1', port: dnsManagement, path: '/clear-a', method: 'POST', body: JSON.stringify({ host: `${DOMAIN}.` }) })).status === 200, 'mock DNS listening');

  site = siteSpec('shop', { domain: DOMAIN, tls: { mode: 'acme' }, upstreams: [{ host: '127.0.0.1', port: upstreamPort, weight: 1 }] });
  for (const [i, address] of NODES.entries()) {
    const edge = new NginxEdge({ root: path.join(dir, `node-${i}`), address, httpPort, httpsPort, logger: createLogger('silent') });
    edges.push(edge);
    await edge.start();
    await edge.apply({ version: 1, sites: [site] });
  }
  sandbox = await isolated({ migrate: false });
}, 60_000);

afterAll(async () => {
  for (const edge of edges) await edge.stop().catch(() => undefined);
  for (const child of children) child.kill('SIGTERM');
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
  await sandbox?.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

describe('ACME certificates for edge sites (pebble)', () => {
  let store: CertificateStore;
  let issuer: AcmeIssuer;
  let first: IssuedCertificate;
  const published: string[] = [];

  it('issues one certificate through one order whose token every node serves, and both nodes serve it over HTTPS', async () => {
    store = await CertificateStore.open(sandbox.rt.nats, sandbox.rt.names, masterKey());
    const accountKeyPem = await store.accountKey(directoryUrl, newAccountKeyPem);
    expect(await store.accountKey(directoryUrl, () => Promise.reject(new Error('created twice')))).toBe(accountKeyPem);
    const dirs = edges.map((edge) => edge.paths.acmeChallenges);
    issuer = new AcmeIssuer({ directoryUrl, accountKeyPem, publisher: checkingPublisher(new DirectoryChallengePublisher(dirs), published), pollMinMs: 100, pollMaxMs: 500 });

    first = await issuer.issue([DOMAIN]);
    expect(published).toHaveLength(1);
    expect([caFetched(0, published[0] ?? ''), caFetched(1, published[0] ?? '')]).toEqual([true, false]);
    expect(first.certificatePem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(first.notAfter.getTime()).toBeGreaterThan(first.notBefore.getTime());
    await install(first, 2);
    for (const node of NODES) expect(await curl(node)).toBe('shop upstream /');
  });

  it('keeps the certificate sealed in the namespace bucket and opens it again', async () => {
    await store.put({ siteId: site.siteId, domains: [DOMAIN], ...first });
    const raw = await (await new Objm(sandbox.rt.nats.js).open(store.bucket)).getBlob('site/shop');
    expect(Buffer.from(raw ?? []).toString('latin1')).not.toContain('PRIVATE KEY');
    expect(await store.get(site.siteId)).toEqual({ siteId: site.siteId, domains: [DOMAIN], ...first });
    expect(await store.list()).toEqual([{ siteId: site.siteId, domains: [DOMAIN], notBefore: first.notBefore, notAfter: first.notAfter }]);
    expect(await store.get('other')).toBeNull();
    expect(renewalDueAt(first.notBefore, first.notAfter).getTime()).toBeLessThan(first.notAfter.getTime());
  });

  it('renews (validated through the other node) and re-applies under a request loop with no failed request', async () => {
    // The mock DNS now answers 127.0.0.2 only: the CA fetches the new token from the second node.
    const moved = await http({ host: '127.0.0.1', port: dnsManagement, path: '/add-a', method: 'POST', body: JSON.stringify({ host: `${DOMAIN}.`, addresses: ['127.0.0.2'] }) });
    expect(moved.status).toBe(200);
    const failures: string[] = [];
    const serials = new Set<string>();
    let requests = 0;
    let running = true;
    const loop = async (node: string): Promise<void> => {
      while (running) {
        try {
          const answer = await https({ host: node, port: httpsPort, path: '/loop', servername: DOMAIN, ca: pebbleRoot });
          requests++;
          if (answer.serial) serials.add(answer.serial);
          if (answer.status !== 200) failures.push(`${node}: status ${answer.status}`);
        } catch (err) {
          failures.push(`${node}: ${(err as Error).message}`);
        }
      }
    };
    const loops = NODES.map(loop);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const renewed = await issuer.issue([DOMAIN]);
    expect(published).toHaveLength(2);
    expect([caFetched(0, published[1] ?? ''), caFetched(1, published[1] ?? '')]).toEqual([false, true]);
    await install(renewed, 3);
    await store.put({ siteId: site.siteId, domains: [DOMAIN], ...renewed });
    await new Promise((resolve) => setTimeout(resolve, 300));
    running = false;
    await Promise.all(loops);

    expect(failures).toEqual([]);
    expect(requests).toBeGreaterThan(10);
    expect(serials.size).toBe(2);
    const renewedSerial = (await https({ host: NODES[1], port: httpsPort, path: '/', servername: DOMAIN, ca: pebbleRoot })).serial;
    expect(serials).toContain(renewedSerial);
    expect((await store.get(site.siteId))?.certificatePem).toBe(renewed.certificatePem);
    for (const node of NODES) expect(await curl(node)).toBe('shop upstream /');
  });
});
