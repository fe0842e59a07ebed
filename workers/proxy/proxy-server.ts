/**
 * The Relaygrid proxy: HTTP (forward and CONNECT), HTTPS (the same, with TLS
 * to the proxy) and SOCKS5 listeners over one user directory, one gate and
 * one accounting. Listeners come and go by port without touching the others,
 * so a changed profile never drops another listener's tunnels.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Logger } from '../../infra/logger.js';
import { ProxyAccounting } from './accounting.js';
import { ProxyDirectory } from './directory.js';
import { ProxyGate, type GateOptions } from './gate.js';
import { attachHttpProxy } from './http-proxy.js';
import { serveSocks5 } from './socks5.js';

export type ListenerKind = 'http' | 'https' | 'socks';

export interface ListenerSpec {
  kind: ListenerKind;
  port: number;
  host?: string;
  /** PEM certificate chain and key: required for `https`. */
  tls?: { cert: string | Buffer; key: string | Buffer };
}

interface Listener {
  spec: ListenerSpec;
  server: net.Server;
  sockets: Set<net.Socket>;
}

export type ProxyServerOptions = Omit<GateOptions, 'directory' | 'accounting'> & { log: Logger };

export class ProxyServer {
  readonly directory = new ProxyDirectory();
  readonly accounting = new ProxyAccounting();
  readonly gate: ProxyGate;
  private readonly listeners = new Map<number, Listener>();

  constructor(private readonly o: ProxyServerOptions) {
    this.gate = new ProxyGate({ ...o, directory: this.directory, accounting: this.accounting });
  }

  private make(spec: ListenerSpec): net.Server {
    const { log } = this.o;
    if (spec.kind === 'socks') return net.createServer((socket) => serveSocks5(this.gate, log, socket));
    const options = { maxHeaderSize: 16 * 1024, headersTimeout: 10_000, requestTimeout: 0, keepAliveTimeout: 5_000 };
    const server = spec.kind === 'https' ? https.createServer({ ...options, ...(spec.tls ?? {}) }) : http.createServer(options);
    attachHttpProxy(server, this.gate, log);
    return server;
  }

  /** Starts a listener; answers its port (0 asks for any free one). */
  async listen(spec: ListenerSpec): Promise<number> {
    if (spec.kind === 'https' && !spec.tls) throw new Error(`https listener on ${spec.port}: a certificate and key are required`);
    const server = this.make(spec);
    const sockets = new Set<net.Socket>();
    server.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(spec.port, spec.host ?? '0.0.0.0', () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.o.log.error({ err, port: spec.port }, 'proxy listener failed'));
    const port = (server.address() as net.AddressInfo).port;
    this.listeners.set(port, { spec: { ...spec, port }, server, sockets });
    this.o.log.info({ kind: spec.kind, port }, 'proxy listening');
    return port;
  }

  /** The listeners running, by port. */
  specs(): ListenerSpec[] {
    return [...this.listeners.values()].map((l) => l.spec);
  }

  /** Stops one listener and closes its connections. */
  async unlisten(port: number): Promise<void> {
    const l = this.listeners.get(port);
    if (!l) return;
    this.listeners.delete(port);
    for (const s of l.sockets) s.destroy();
    await new Promise<void>((resolve) => l.server.close(() => resolve()));
  }

  async close(): Promise<void> {
    for (const port of [...this.listeners.keys()]) await this.unlisten(port);
  }
}
