/**
 * The Relaygrid proxy with real curl processes: HTTP and SOCKS5 fetch a file
 * of known size and hash from a local origin and the bytes land in the
 * user's accounting; a wrong password and an unknown user get the same
 * answer; removing a user cuts their open tunnel within 3 s while another
 * user's download finishes; a bad SOCKS greeting and a smuggling attempt get
 * protocol errors and the proxy keeps serving.
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../infra/logger.js';
import { LOOPBACK } from '../../infra/stack/ports.js';
import { ProxyServer } from '../../workers/proxy/proxy-server.js';
import { CURL } from '../support/proxy-traffic.js';

const log = createLogger(process.env['LOG_LEVEL'] ?? 'silent', { test: 'proxy' });
const FILE = randomBytes(3 * 1024 * 1024 + 17);
const SHA = createHash('sha256').update(FILE).digest('hex');

function run(args: string[]): Promise<{ code: number; stdout: Buffer }> {
  return new Promise((resolve) => {
    execFile(CURL, ['--silent', '--max-time', '20', ...args], { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024 }, (err, stdout) => resolve({ code: err ? Number(err.code ?? -1) : 0, stdout }));
  });
}

async function raw(port: number, bytes: Buffer): Promise<Buffer> {
  const s = net.connect(port, LOOPBACK);
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.write(bytes);
  await new Promise((resolve) => s.on('close', resolve).on('error', resolve));
  return Buffer.concat(chunks);
}

describe('the Relaygrid proxy', () => {
  let origin: http.Server;
  let originPort: number;
  let proxy: ProxyServer;
  let httpPort: number;
  let socksPort: number;
  let httpsPort: number;
  const dir = mkdtempSync(join(tmpdir(), 'rg-proxy-'));

  beforeAll(async () => {
    origin = http.createServer((req, res) => {
      if (req.url === '/file') {
        res.writeHead(200, { 'content-length': FILE.length });
        res.end(FILE);
      } else if (req.url === '/slow') {
        res.writeHead(200, { 'content-length': 50 * 1024 * 1024 });
        const timer = setInterval(() => res.write(randomBytes(64 * 1024)), 20);
        res.once('close', () => clearInterval(timer));
      } else res.end('ok');
    });
    await new Promise<void>((r) => origin.listen(0, LOOPBACK, r));
    originPort = (origin.address() as net.AddressInfo).port;
    proxy = new ProxyServer({ log, location: { country: 'DE', city: 'Frankfurt' } });
    httpPort = await proxy.listen({ kind: 'http', port: 0, host: LOOPBACK });
    socksPort = await proxy.listen({ kind: 'socks', port: 0, host: LOOPBACK });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
    httpsPort = await proxy.listen({ kind: 'https', port: 0, host: LOOPBACK, tls: { cert: readFileSync(join(dir, 'cert.pem')), key: readFileSync(join(dir, 'key.pem')) } });
    proxy.directory.set({ userId: 'alice-id', username: 'ualice', password: 'a-secret' });
    proxy.directory.set({ userId: 'bob-id', username: 'ubob', password: 'b-secret' });
  });

  afterAll(async () => {
    await proxy.close();
    origin.closeAllConnections();
    await new Promise((r) => origin.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('fetches a file through HTTP, CONNECT, HTTPS and SOCKS5, and counts its bytes for the user', async () => {
    proxy.accounting.take();
    const viaHttp = await run(['-x', `http://ualice:a-secret@${LOOPBACK}:${httpPort}`, `http://${LOOPBACK}:${originPort}/file`]);
    const viaConnect = await run(['-p', '-x', `http://ualice-country-de:a-secret@${LOOPBACK}:${httpPort}`, `http://${LOOPBACK}:${originPort}/file`]);
    const viaSocks = await run(['--socks5-hostname', `ualice:a-secret@${LOOPBACK}:${socksPort}`, `http://localhost:${originPort}/file`]);
    const viaHttps = await run(['-p', '--proxy-cacert', join(dir, 'cert.pem'), '-x', `https://ualice:a-secret@${LOOPBACK}:${httpsPort}`, `http://${LOOPBACK}:${originPort}/file`]);
    for (const r of [viaHttp, viaConnect, viaSocks, viaHttps]) {
      expect(r.code).toBe(0);
      expect(createHash('sha256').update(r.stdout).digest('hex')).toBe(SHA);
    }
    const usage = proxy.accounting.take().get('alice-id')!;
    expect(Number(usage.downlink)).toBeGreaterThanOrEqual(4 * FILE.length);
    expect(Number(usage.downlink)).toBeLessThan(4 * FILE.length + 4 * 2_048);
    expect(usage.connections).toBe(4);
  });

  it('answers a wrong password and an unknown user alike, and refuses another country clearly', async () => {
    const head = async (user: string) => (await run(['-o', '/dev/null', '-w', '%{http_code}', '-x', `http://${user}@${LOOPBACK}:${httpPort}`, `http://${LOOPBACK}:${originPort}/`])).stdout.toString();
    expect(await head('ualice:wrong')).toBe('407');
    expect(await head('unobody:wrong')).toBe('407');
    expect(await head('ualice-country-fr:a-secret')).toBe('403');
  });

  it('cuts a removed user’s tunnels within 3 s; another user’s download finishes', async () => {
    const started = Date.now();
    const alice = run(['-p', '-o', '/dev/null', '-x', `http://ualice:a-secret@${LOOPBACK}:${httpPort}`, `http://${LOOPBACK}:${originPort}/slow`]);
    const aliceSocks = run(['-o', '/dev/null', '--socks5-hostname', `ualice:a-secret@${LOOPBACK}:${socksPort}`, `http://localhost:${originPort}/slow`]);
    const bob = run(['--socks5-hostname', `ubob:b-secret@${LOOPBACK}:${socksPort}`, `http://localhost:${originPort}/file`]);
    await new Promise((r) => setTimeout(r, 500));
    expect(proxy.directory.get('ualice')!.open.size).toBe(2);
    const removedAt = Date.now();
    proxy.directory.remove('ualice');
    const [a, s] = await Promise.all([alice, aliceSocks]);
    expect(a.code).not.toBe(0);
    expect(s.code).not.toBe(0);
    expect(Date.now() - removedAt).toBeLessThan(3_000);
    const b = await bob;
    expect(createHash('sha256').update(b.stdout).digest('hex')).toBe(SHA);
    expect(Date.now() - started).toBeLessThan(15_000);
    proxy.directory.set({ userId: 'alice-id', username: 'ualice', password: 'a-secret' });
  });

  it('answers malformed input with protocol errors and keeps serving', async () => {
    expect([...(await raw(socksPort, Buffer.from([0x05, 0x00])))]).toEqual([0x05, 0xff]);
    expect((await raw(socksPort, Buffer.from([0x04, 0x01, 0x00, 0x50])))).toHaveLength(0);
    const smuggle = `POST http://${LOOPBACK}:${originPort}/ HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`;
    expect((await raw(httpPort, Buffer.from(smuggle))).toString()).toMatch(/^HTTP\/1\.1 400/);
    const flood = `GET http://${LOOPBACK}:${originPort}/ HTTP/1.1\r\n${'x-a: ' + 'b'.repeat(100) + '\r\n'.repeat(1)}`.repeat(1) + Array.from({ length: 400 }, (_, i) => `x-${i}: ${'b'.repeat(60)}\r\n`).join('') + '\r\n';
    expect((await raw(httpPort, Buffer.from(flood))).toString()).toMatch(/^HTTP\/1\.1 431/);
    const ok = await run(['-x', `http://ubob:b-secret@${LOOPBACK}:${httpPort}`, `http://${LOOPBACK}:${originPort}/file`]);
    expect(ok.code).toBe(0);
  });
});
