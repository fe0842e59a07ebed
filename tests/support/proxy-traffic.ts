/**
 * Traffic through a real proxy core, for the core and fleet tests: an origin
 * HTTP server that counts bytes and can hold a response half-sent, curl
 * through a SOCKS5 port, and a client core configured from a share link.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import { LOOPBACK } from '../../infra/stack/ports.js';

export const CURL = process.env['CURL_BIN'] ?? '/usr/bin/curl';

export interface CurlResult {
  code: number;
  body: number;
  stderr: string;
}

/** curl through a SOCKS5 proxy; resolves with its exit code and the size of the body it got. */
export function curl(socksPort: number, url: string, extra: string[] = []): Promise<CurlResult> {
  return new Promise((resolve) => {
    const args = ['--silent', '--show-error', '--max-time', '8', '--socks5-hostname', `${LOOPBACK}:${socksPort}`, '--output', '/dev/null', '--write-out', '%{size_download}', ...extra, url];
    execFile(CURL, args, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
      resolve({ code, body: Number(stdout.trim() || '0'), stderr });
    });
  });
}

/**
 * The origin: `/bytes/<n>` answers n random bytes, `/upload` takes a body,
 * `/held/<n>` sends half of n bytes and the rest once released (a connection
 * that stays open across a change), `/trickle/<n>` sends 1 KiB every 20 ms
 * until n bytes or the connection ends (a download in progress). Counts body
 * bytes each way, and the trickles still sending.
 */
export class Origin {
  readonly server: http.Server;
  sent = 0;
  received = 0;
  heldRequests = 0;
  /** Trickle responses still open: one the proxy tore down is no longer here. */
  openTrickles = 0;
  private releaseHeld: Array<() => void> = [];

  constructor() {
    this.server = http.createServer((req, res) => {
      req.on('data', (chunk: Buffer) => (this.received += chunk.length));
      req.on('end', () => {
        const send = (bytes: number) => {
          this.sent += bytes;
          res.write(randomBytes(bytes));
        };
        const [, route, size] = (req.url ?? '').split('/');
        const n = Number(size);
        if (route === 'bytes' && Number.isInteger(n)) {
          res.writeHead(200, { 'content-length': n });
          send(n);
          res.end();
        } else if (route === 'upload') {
          res.writeHead(204);
          res.end();
        } else if (route === 'held' && Number.isInteger(n)) {
          res.writeHead(200, { 'content-length': n });
          send(Math.floor(n / 2));
          this.heldRequests++;
          this.releaseHeld.push(() => {
            send(n - Math.floor(n / 2));
            res.end();
          });
        } else if (route === 'trickle' && Number.isInteger(n)) {
          res.writeHead(200, { 'content-length': n });
          this.openTrickles++;
          let left = n;
          const timer = setInterval(() => {
            const bytes = Math.min(1_024, left);
            send(bytes);
            left -= bytes;
            if (left === 0) res.end();
          }, 20);
          res.once('close', () => {
            clearInterval(timer);
            this.openTrickles--;
          });
        } else {
          res.writeHead(404);
          res.end();
        }
      });
    });
  }

  async listen(): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, LOOPBACK, resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  release(): void {
    for (const release of this.releaseHeld.splice(0)) release();
  }

  async close(): Promise<void> {
    this.release();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * A client core's configuration from a `vless://` or `trojan://` share link,
 * as v2rayN would build it: SOCKS in on `socksPort`, everything out to the
 * node the link names. TLS certificates are not verified (test nodes use
 * self-signed ones).
 */
export function clientConfigFromLink(link: string, socksPort: number): Record<string, unknown> {
  const url = new URL(link);
  const protocol = url.protocol.replace(':', '');
  const address = url.hostname.replace(/^\[|\]$/g, '');
  const port = Number(url.port);
  const params = url.searchParams;
  const security = params.get('security') ?? 'none';
  if (security === 'reality') throw new Error('V2Ray 4.34 has no REALITY client');
  const secret = decodeURIComponent(url.username);
  const settings =
    protocol === 'vless'
      ? { vnext: [{ address, port, users: [{ id: secret, encryption: params.get('encryption') ?? 'none', ...(params.get('flow') ? { flow: params.get('flow') } : {}) }] }] }
      : { servers: [{ address, port, password: secret }] };
  return {
    log: { loglevel: 'warning' },
    inbounds: [{ tag: 'socks-in', listen: LOOPBACK, port: socksPort, protocol: 'socks', settings: { auth: 'noauth', udp: false } }],
    outbounds: [
      {
        tag: 'to-node',
        protocol,
        settings,
        streamSettings: { network: params.get('type') ?? 'tcp', security, ...(security === 'tls' ? { tlsSettings: { serverName: params.get('sni') ?? address, allowInsecure: true } } : {}) },
      },
    ],
  };
}
