/**
 * The HTTP forward proxy: absolute-form requests (`GET http://host/path`)
 * forwarded with the hop-by-hop and `Proxy-*` headers removed, and CONNECT
 * tunnels. The same handlers serve HTTPS (TLS to the proxy itself: the server
 * is then an https.Server). Node's parser (llhttp, strict) refuses what would
 * let requests be smuggled (Content-Length with Transfer-Encoding, bad chunk
 * sizes) and headers past 16 KiB; those get 400 or 431 and the connection
 * closes, nothing else is touched.
 */
import http from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../../infra/logger.js';
import type { Admission, ProxyGate, Refusal } from './gate.js';
import { pump, tunnel } from './relay.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authorization', 'proxy-authenticate', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const REALM = 'Basic realm="relaygrid"';

const STATUS: Record<Refusal['kind'], number> = { auth: 407, syntax: 407, throttled: 429, location: 403, connections: 429, requests: 429 };
const CODE: Record<Refusal['kind'], string> = {
  auth: 'proxy_auth_failed',
  syntax: 'invalid_proxy_username',
  throttled: 'too_many_auth_failures',
  location: 'location_unavailable',
  connections: 'too_many_connections',
  requests: 'too_many_requests',
};

function credentials(header: string | undefined): { username: string; password: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
  if (!m) return null;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? { username: text, password: '' } : { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

function admit(gate: ProxyGate, req: http.IncomingMessage): Admission {
  const c = credentials(req.headers['proxy-authorization']);
  return gate.admit(c?.username ?? null, c?.password ?? null, req.socket.remoteAddress ?? '');
}

function refusalHead(r: Refusal): { status: number; headers: Record<string, string>; body: string } {
  const body = JSON.stringify({ code: CODE[r.kind], message: r.message });
  const headers: Record<string, string> = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'x-relaygrid-error': CODE[r.kind] };
  if (STATUS[r.kind] === 407) headers['proxy-authenticate'] = REALM;
  if (STATUS[r.kind] === 429) headers['retry-after'] = r.kind === 'throttled' ? '60' : '1';
  return { status: STATUS[r.kind], headers, body };
}

/** A refusal on a raw socket (CONNECT, parse errors), then close. */
function refuseRaw(socket: Duplex, status: number, reason: string, headers: Record<string, string>, body: string): void {
  if (!socket.writable) return void socket.destroy();
  const lines = [`HTTP/1.1 ${status} ${reason}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'connection: close', '', body];
  socket.end(lines.join('\r\n'));
}

function authority(url: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/\s]+)):(\d{1,5})$/.exec(url);
  if (!m) return null;
  const port = Number(m[3]);
  return port >= 1 && port <= 65_535 ? { host: m[1] ?? m[2]!, port } : null;
}

function forwardHeaders(req: http.IncomingMessage): http.OutgoingHttpHeaders {
  const named = new Set((req.headers.connection ?? '').split(',').map((s) => s.trim().toLowerCase()));
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k) && !named.has(k)) out[k] = v;
  return out;
}

export function attachHttpProxy(server: http.Server, gate: ProxyGate, log: Logger): void {
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => forward(gate, log, req, res));
  server.on('connect', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => void connect(gate, log, req, socket as net.Socket, head));
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    log.debug({ code: err.code }, 'http proxy: malformed request');
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy();
    const overflow = err.code === 'HPE_HEADER_OVERFLOW';
    const body = JSON.stringify({ code: 'bad_request', message: overflow ? 'request headers too large' : 'malformed HTTP request' });
    refuseRaw(socket, overflow ? 431 : 400, overflow ? 'Request Header Fields Too Large' : 'Bad Request', { 'content-type': 'application/json', 'content-length': String(body.length) }, body);
  });
}

function forward(gate: ProxyGate, log: Logger, req: http.IncomingMessage, res: http.ServerResponse): void {
  const fail = (status: number, code: string, message: string, headers: Record<string, string> = {}) => {
    if (res.headersSent) return void res.destroy();
    const body = JSON.stringify({ code, message });
    res.writeHead(status, { 'content-type': 'application/json', 'x-relaygrid-error': code, ...headers });
    res.end(body);
  };
  let target: URL;
  try {
    target = new URL(req.url ?? '');
  } catch {
    return fail(400, 'bad_request', 'a proxy request names an absolute http:// URL');
  }
  if (target.protocol !== 'http:') return fail(400, 'bad_request', 'only http:// URLs are forwarded; use CONNECT for https');
  const admission = admit(gate, req);
  if (!admission.ok) {
    const r = refusalHead(admission.refusal);
    res.writeHead(r.status, r.headers);
    return void res.end(r.body);
  }
  const { user, params } = admission;
  if (!gate.request(user)) {
    const r = refusalHead({ kind: 'requests', message: `at most ${user.account.limits?.requestsPerSecond} requests a second` });
    res.writeHead(r.status, r.headers);
    return void res.end(r.body);
  }
  const release = gate.hold(user, { close: () => req.socket.destroy() });
  res.once('close', release);
  const { accounting } = gate.o;
  const localAddress = gate.egressFor(params);
  const upstream = http.request({
    host: target.hostname.replace(/^\[|\]$/g, ''),
    port: target.port || 80,
    method: req.method,
    path: `${target.pathname}${target.search}`,
    headers: forwardHeaders(req),
    agent: false,
    ...(localAddress ? { localAddress } : {}),
  });
  upstream.on('error', (err: NodeJS.ErrnoException) => {
    log.debug({ code: err.code }, 'http proxy: upstream failed');
    fail(502, 'upstream_failed', `the destination did not answer: ${err.code ?? err.message}`);
  });
  upstream.on('response', (up) => {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    res.writeHead(up.statusCode ?? 502, up.statusMessage, headers);
    accounting.downlink(user.userId, up.rawHeaders.reduce((n, h) => n + h.length + 2, 0));
    pump(up, res, () => user.downlink, (n) => accounting.downlink(user.userId, n));
    up.on('error', () => res.destroy());
  });
  accounting.uplink(user.userId, req.rawHeaders.reduce((n, h) => n + h.length + 2, (req.url ?? '').length));
  pump(req, upstream, () => user.uplink, (n) => accounting.uplink(user.userId, n));
  res.once('close', () => upstream.destroy());
}

async function connect(gate: ProxyGate, log: Logger, req: http.IncomingMessage, socket: net.Socket, head: Buffer): Promise<void> {
  socket.on('error', () => undefined);
  const target = authority(req.url ?? '');
  if (!target) return refuseRaw(socket, 400, 'Bad Request', {}, '');
  const admission = admit(gate, req);
  if (!admission.ok) {
    const r = refusalHead(admission.refusal);
    return refuseRaw(socket, r.status, 'Refused', r.headers, r.body);
  }
  const { user, params } = admission;
  if (!gate.request(user)) {
    const r = refusalHead({ kind: 'requests', message: `at most ${user.account.limits?.requestsPerSecond} requests a second` });
    return refuseRaw(socket, r.status, 'Too Many Requests', r.headers, r.body);
  }
  const release = gate.hold(user, { close: () => socket.destroy() });
  let upstream: net.Socket;
  try {
    upstream = await gate.connect(target.host, target.port, params);
  } catch (err) {
    release();
    const code = (err as NodeJS.ErrnoException).code ?? 'failed';
    log.debug({ code }, 'http proxy: CONNECT failed');
    const body = JSON.stringify({ code: 'upstream_failed', message: `the destination did not answer: ${code}` });
    return refuseRaw(socket, 502, 'Bad Gateway', { 'content-type': 'application/json', 'content-length': String(body.length), 'x-relaygrid-error': 'upstream_failed' }, body);
  }
  if (socket.destroyed) {
    upstream.destroy();
    return release();
  }
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length > 0) {
    gate.o.accounting.uplink(user.userId, head.length);
    upstream.write(head);
  }
  tunnel(socket, upstream, gate.tunnelOptions(user, release));
}
