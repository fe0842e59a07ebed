/** HTTP helpers for the edge driver tests: one request per connection, TLS with SNI, loopback ports, self-signed certificates. */
import { execFileSync } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request on a fresh connection (a keep-alive connection an old worker closes on reload is the client's to retry, not a failure of the edge). */
export function get(port: number, host: string, urlPath: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: urlPath, agent: false, headers: { Host: host, 'User-Agent': 'Mozilla/5.0 (edge test)', Accept: 'text/html' } },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
        res.on('error', reject);
      },
    );
    req.setTimeout(5_000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** A GET over TLS with SNI `host`, trusting only `ca`. */
export function getTls(port: number, host: string, ca: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port, path: '/', servername: host, ca, agent: false, headers: { Host: host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

export function selfSigned(dir: string, name: string): { certPath: string; keyPath: string } {
  const certPath = path.join(dir, `${name}.crt`);
  const keyPath = path.join(dir, `${name}.key`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '1', '-subj', `/CN=${name}`, '-addext', `subjectAltName=DNS:${name}`], { stdio: 'ignore' });
  return { certPath, keyPath };
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface CountingUpstream {
  server: Server;
  port: number;
  /** Requests seen for `host path`. */
  count(host: string, urlPath: string): number;
  close(): Promise<void>;
}

/** A loopback upstream answering `<name> <path>` as text/plain (with `statusOf(path)`, default 200), counting what reaches it. */
export async function countingUpstream(name = 'upstream', statusOf: (urlPath: string) => number = () => 200): Promise<CountingUpstream> {
  const seen = new Map<string, number>();
  const server = createServer((req, res) => {
    const key = `${req.headers.host ?? ''} ${req.url ?? ''}`;
    seen.set(key, (seen.get(key) ?? 0) + 1);
    res.statusCode = statusOf(req.url ?? '');
    res.setHeader('Content-Type', 'text/plain');
    res.end(`${name} ${req.url ?? ''}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    server,
    port: (server.address() as AddressInfo).port,
    count: (host, urlPath) => seen.get(`${host} ${urlPath}`) ?? 0,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** `parallel` clients GETting `host urlPath` back to back, each on a fresh connection, until stopped: what failed (errors, non-200s) and how many were sent. */
export function requestLoop(port: number, host: string, urlPath: string, parallel = 3): { stop(): Promise<{ failures: string[]; requests: number }> } {
  let running = true;
  const failures: string[] = [];
  let requests = 0;
  const loop = async (): Promise<void> => {
    while (running) {
      requests += 1;
      try {
        const answer = await get(port, host, urlPath);
        if (answer.status !== 200) failures.push(`status ${answer.status}`);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: parallel }, loop);
  return {
    stop: async () => {
      running = false;
      await Promise.all(loops);
      return { failures, requests };
    },
  };
}
