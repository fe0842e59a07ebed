/**
 * The messenger gateway (uWebSockets.js): `GET /v1/ws`. Authenticates at the
 * upgrade, keeps one live connection per device, and runs protocol v1
 * (docs/protocol.md). Stored messages come from the inbox stream (resume) and
 * from core NATS (live); this file routes them to sockets, the modules beside
 * it do the rest: sending.ts stores, presence.ts and expiry.ts keep Redis.
 */
import { randomUUID } from 'node:crypto';
import uWS, { type HttpResponse, type TemplatedApp, type us_listen_socket, type WebSocket } from 'uWebSockets.js';
import type { Redis } from 'ioredis';
import type { Subscription } from '@nats-io/transport-node';
import { decodeMessage } from '../contracts/envelope.js';
import type { Kysely } from 'kysely';
import type { MessagingConfig } from '../infra/config.js';
import type { Logger } from '../infra/logger.js';
import type { Metrics } from '../infra/metrics.js';
import type { ReadinessReport } from '../infra/readiness.js';
import type { Nats } from '../infra/nats/connection.js';
import type { Names } from '../infra/naming.js';
import type { EventStore } from '../producers/event-store/event-store.js';
import type { Authentication } from '../producers/identity/authentication.js';
import type { Revocation, Revocations } from '../producers/identity/tokens/revocations.js';
import type { Database } from '../schema/database.js';
import { Connection, type SocketData } from './connection.js';
import { Directory, visibleTo } from './directory.js';
import { InboxExpiry, type Scheduled } from './expiry.js';
import { Inbox, msgFrame, type HeldEntry, type StoredMessage } from './inbox.js';
import { live } from './live-frames.js';
import { MessageEvents } from './message-events.js';
import { Presence, type PresenceState } from './presence.js';
import { CLOSE, errorFrame, FrameError, frameOf, parseClientFrame, type ClientFrame, type FrameLimits } from './protocol.js';
import { Sending } from './sending.js';
import { SetMap } from './set-map.js';
import { SharedSubscriptions } from './subscriptions.js';

export interface GatewayDeps {
  nats: Nats;
  names: Names;
  redis: Redis;
  db: Kysely<Database>;
  store: EventStore;
  auth: Pick<Authentication, 'authenticateToken'>;
  /** Revoked sessions and users: their open connections are closed with 4401. */
  revocations?: Pick<Revocations, 'onRevoke'>;
  metrics: Metrics;
  log: Logger;
  config: MessagingConfig;
  /** GET /ready answers this (infra/readiness.ts); without it the gateway serves no /ready. */
  readiness?: () => Promise<ReadinessReport>;
}

/** How far past RG_WS_MAX_FRAME_BYTES a frame may be and still get an error frame rather than a dropped connection. */
const FRAME_LIMIT_MARGIN = 1024 * 1024;
/** Sends refused for rate in a row before the connection is closed with 4429. */
const REFUSALS_BEFORE_CLOSE = 20;
/** How long a connection may wait before its first frame; then the backlog is sent as if it had resumed from 0. */
const IMPLICIT_RESUME_MS = 1000;

function presenceFrame(s: PresenceState): string {
  return JSON.stringify({ op: 'presence', user: s.user, state: s.state, lastSeen: s.lastSeen });
}

/** How long stop() waits for sends already taken (a supervisor SIGKILLs ~10 s after SIGTERM). */
const DRAIN_MS = 5_000;
/** The least a drain waits after telling clients to go, for frames already on their way. */
const DRAIN_GRACE_MS = 250;
/** Told to every client when the gateway drains: reconnect (to any gateway) and resume. */
const RECONNECT_FRAME = JSON.stringify({ op: 'reconnect', reason: 'draining' });

export class Gateway {
  /** Per boot: presence claims are keyed by it, so a dead gateway's claims are recognisable and expire. */
  readonly id = `gw-${randomUUID()}`;
  readonly app: TemplatedApp;
  private readonly inbox: Inbox;
  private readonly directory: Directory;
  private readonly presence: Presence;
  private readonly expiry: InboxExpiry;
  private readonly events: MessageEvents;
  private readonly sending: Sending;
  private readonly limits: FrameLimits;
  private readonly connections = new Map<string, Connection>();
  private readonly byUser = new SetMap<string, Connection>();
  private readonly bySession = new SetMap<string, Connection>();
  private readonly resuming = new Set<Connection>();
  private readonly watchers = new SetMap<string, Connection>();
  private readonly userSubs: SharedSubscriptions;
  private readonly groupSubs: SharedSubscriptions;
  private epoch = '';
  private listenSocket: us_listen_socket | undefined;
  private directoryEvents: Subscription[] = [];
  private slowSweep: NodeJS.Timeout | undefined;
  /** Set by stop(): new sends are refused while the ones taken finish. */
  private draining = false;

  constructor(private readonly d: GatewayDeps) {
    const { config } = d;
    this.inbox = new Inbox(d.nats, d.names);
    this.directory = new Directory(d.db);
    this.presence = new Presence(d, { gatewayId: this.id, ttlMs: config.presenceTtlSeconds * 1000, offlineDebounceMs: config.offlineDebounceMs }, (change) =>
      this.presenceChanged(change),
    );
    this.events = new MessageEvents({ store: d.store, log: d.log, metrics: d.metrics, gatewayId: this.id });
    this.expiry = new InboxExpiry({ redis: d.redis, inbox: this.inbox, namespace: d.names.namespace, log: d.log, retentionSeconds: config.inboxRetentionSeconds }, (entry) =>
      this.expired(entry),
    );
    this.sending = new Sending({
      ...d,
      inbox: this.inbox,
      expiry: this.expiry,
      directory: this.directory,
      presence: this.presence,
      events: this.events,
      pairSendsPerMinute: config.pairSendsPerMinute,
      idMemorySeconds: config.inboxRetentionSeconds,
    });
    this.limits = { maxMessageBytes: config.maxMessageBytes, maxDevicesPerSend: 64, maxWatch: 500, maxTtlSeconds: config.inboxRetentionSeconds };
    this.userSubs = new SharedSubscriptions(d.nats, (subject, data) => this.userLive(subject, data));
    this.groupSubs = new SharedSubscriptions(d.nats, (subject, data) => this.groupLive(subject, data));
    d.revocations?.onRevoke((r) => this.revoked(r));
    this.app = uWS.App();
    this.app.ws<SocketData>('/v1/ws', {
      compression: uWS.DISABLED, // payloads are ciphertext: deflate gains nothing and costs memory per socket
      // uWS drops the TCP connection past its limit without a word, so its limit sits above ours, which answers first.
      maxPayloadLength: config.maxFrameBytes + FRAME_LIMIT_MARGIN,
      idleTimeout: 60,
      sendPingsAutomatically: true,
      // uWS's own limit is the hard stop (an abrupt close, 1006) well above ours: ours (Connection.write, the
      // sweep) closes with 4008 first, and the close frame itself must still fit under uWS's limit or it is lost.
      // The largest frame it sends is a msg carrying a maximal ciphertext in base64.
      maxBackpressure: config.maxBackpressureBytes * 2 + 4 * Math.max(config.maxFrameBytes, 2 * config.maxMessageBytes),
      closeOnBackpressureLimit: 1,
      upgrade: (res, req, context) => this.upgrade(res, req, context),
      open: (ws) => this.opened(ws),
      // Decoded at once: uWS reuses the message buffer when the handler returns.
      message: (ws, message, isBinary) => {
        if (message.byteLength > config.maxFrameBytes) this.tooLarge(ws, message.byteLength);
        else this.received(ws, Buffer.from(message).toString('utf8'), isBinary);
      },
      close: (ws, code) => this.closed(ws, code),
    });
    this.app.get('/health', (res) => {
      res.cork(() => res.writeHeader('content-type', 'application/json').end(JSON.stringify({ status: 'ok', gateway: this.id, connections: this.connections.size })));
    });
    this.app.get('/metrics', (res) =>
      this.answerLater(res, async () => ({ status: '200 OK', type: d.metrics.registry.contentType, body: await d.metrics.registry.metrics() })),
    );
    const readiness = d.readiness;
    if (readiness) {
      this.app.get('/ready', (res) =>
        this.answerLater(res, async () => {
          const report = await readiness();
          return { status: report.ready ? '200 OK' : '503 Service Unavailable', type: 'application/json', body: JSON.stringify(report) };
        }),
      );
    }
    this.app.any('/*', (res) => {
      res.cork(() => res.writeStatus('404 Not Found').writeHeader('content-type', 'application/json').end('{"code":"not_found","message":"the gateway serves GET /v1/ws, /health, /ready and /metrics"}'));
    });
  }

  async start(port: number, host = '0.0.0.0'): Promise<number> {
    this.epoch = await this.inbox.epoch();
    this.presence.start();
    this.expiry.start();
    this.slowSweep = setInterval(() => this.closeSlowConnections(), 500);
    // Group and device events are appended to JetStream on these subjects; core NATS sees each one as it is stored.
    this.directoryEvents = ['group', 'devices'].map((aggregate) =>
      this.d.nats.nc.subscribe(this.d.names.aggregateSubjects('messaging', aggregate), {
        callback: (err, msg) => {
          if (!err) this.directoryChanged({ seq: 0, subject: msg.subject, headers: msg.headers, data: msg.data });
        },
      }),
    );
    this.listenSocket = await new Promise<us_listen_socket>((resolve, reject) => {
      this.app.listen(host, port, (socket) => (socket ? resolve(socket) : reject(new Error(`the gateway could not listen on ${host}:${port}`))));
    });
    return uWS.us_socket_local_port(this.listenSocket);
  }

  /**
   * Graceful drain (SIGTERM): stops accepting, tells every client to go
   * elsewhere (`{"op":"reconnect"}`), refuses new sends with `draining`, lets
   * the sends already taken finish (their `sent` answers still go out), then
   * closes every connection with 1012 and stops. Bounded by `drainMs`: a send
   * still unanswered then is one the client resends with the same id.
   */
  async stop(drainMs = DRAIN_MS): Promise<void> {
    clearInterval(this.slowSweep);
    for (const sub of this.directoryEvents) sub.unsubscribe();
    if (this.listenSocket) uWS.us_listen_socket_close(this.listenSocket);
    this.draining = true;
    const open = [...this.connections.values()];
    for (const conn of open) conn.write(RECONNECT_FRAME);
    let timer: NodeJS.Timeout | undefined;
    // At least a moment, so that sends already on the wire are answered (`draining`) rather than cut off.
    const finished = Promise.all([Promise.allSettled(open.map((conn) => conn.sendQueue)), new Promise((resolve) => setTimeout(resolve, Math.min(DRAIN_GRACE_MS, drainMs)))]);
    await Promise.race([finished, new Promise((resolve) => (timer = setTimeout(resolve, drainMs)))]);
    clearTimeout(timer);
    for (const conn of [...this.connections.values()]) conn.close(CLOSE.restarting, 'gateway restarting: reconnect and resume');
    await this.expiry.stop();
    await this.events.close();
    await this.presence.stop();
    this.userSubs.close();
    this.groupSubs.close();
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  // ---- connecting ----------------------------------------------------------------

  private upgrade(res: HttpResponse, req: uWS.HttpRequest, context: uWS.us_socket_context_t): void {
    // Everything needed from req is copied now: it is invalid after this function returns.
    const key = req.getHeader('sec-websocket-key');
    const offered = req.getHeader('sec-websocket-protocol');
    const authorization = req.getHeader('authorization');
    const device = new URLSearchParams(req.getQuery() ?? '').get('device') ?? '';
    const protocols = offered.split(',').map((p) => p.trim());
    const token = /^Bearer (.+)$/i.exec(authorization)?.[1] ?? protocols.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length) ?? '';
    // Upgraded at once (the JWT check needs no I/O); the device is checked right after, before any frame is acted on.
    // An upgrade completed later from a promise was sometimes closed by this uWS build with 1006 on the spot.
    // A refused token still upgrades, so the client reads close code 4401 and the reason (browsers hide HTTP statuses of failed upgrades).
    // No extensions are accepted: no permessage-deflate for ciphertext.
    res.upgrade<SocketData>(this.checkToken(token, device), key, protocols.includes('relaygrid.v1') ? 'relaygrid.v1' : '', '', context);
  }

  private checkToken(token: string, device: string): SocketData {
    const refused = (authError: string): SocketData => ({ userId: '', deviceId: '', sessionId: '', issuedAt: 0, connId: '', authError });
    if (!token) return refused('missing access token: Authorization: Bearer <jwt> or Sec-WebSocket-Protocol: relaygrid.v1, bearer.<jwt>');
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(device)) return refused('?device=<id> of one of your devices is required');
    try {
      const principal = this.d.auth.authenticateToken(token);
      return { userId: principal.userId, deviceId: device, sessionId: principal.sessionId ?? '', issuedAt: principal.issuedAt ?? 0, connId: randomUUID() };
    } catch (err) {
      return refused((err as Error).message);
    }
  }

  private opened(ws: WebSocket<SocketData>): void {
    const data = ws.getUserData();
    if (data.authError !== undefined) {
      ws.end(CLOSE.auth, data.authError.slice(0, 120));
      return;
    }
    const conn = new Connection(ws, data, this.d.config);
    data.conn = conn;
    this.d.metrics.gatewayConnections.inc();
    conn.ready = this.prepare(conn);
    conn.resumeTimer = setTimeout(() => this.beginResume(conn, { epoch: '', offset: 0 }, false), IMPLICIT_RESUME_MS);
  }

  /**
   * The device check first: until it passes, the connection displaces nobody
   * and is subscribed to nothing. Then subscriptions are in place before anyone
   * is told; then the kick, the groups, presence.
   */
  private async prepare(conn: Connection): Promise<void> {
    try {
      if ((await this.directory.deviceOwner(conn.deviceId, true)) !== conn.userId) {
        conn.close(CLOSE.auth, `device ${conn.deviceId} is not one of yours`);
        return;
      }
      if (!conn.open) return;
      this.register(conn);
      await this.d.nats.nc.flush();
      this.d.nats.nc.publish(this.d.names.liveUser(conn.userId), live.kick(conn.deviceId, conn.connId));
      const groups = await this.directory.groupsOf(conn.userId);
      if (!conn.open) return;
      // Merged, not assigned: a membership event may already have added a group while this query ran.
      for (const { groupId, since } of groups) {
        if (conn.groups.has(groupId)) continue;
        conn.groups.set(groupId, since);
        this.groupSubs.acquire(this.d.names.liveGroup(groupId));
      }
      await this.d.nats.nc.flush();
      if (!conn.open) return;
      // Marked before the call: a close while it runs must withdraw what it adds (Redis runs the two in order).
      conn.announced = true;
      await this.presence.connected(conn.userId, conn.deviceId, conn.connId);
    } catch (err) {
      this.d.log.warn({ err, device: conn.deviceId }, 'connection setup failed');
      conn.close(1011, 'setup failed: reconnect');
    }
  }

  /** One live connection per device: this gateway's is closed now, other gateways' through the kick. */
  private register(conn: Connection): void {
    conn.verified = true;
    this.connections.get(conn.deviceId)?.close(CLOSE.elsewhere, 'this device connected again elsewhere');
    this.connections.set(conn.deviceId, conn);
    this.byUser.add(conn.userId, conn);
    this.bySession.add(conn.sessionId, conn);
    this.userSubs.acquire(this.d.names.liveUser(conn.userId));
  }

  private closed(ws: WebSocket<SocketData>, code: number): void {
    const conn = ws.getUserData().conn;
    if (!conn) return;
    conn.state = 'closed';
    clearTimeout(conn.resumeTimer);
    this.d.metrics.gatewayConnections.dec();
    this.d.metrics.gatewayDisconnects.inc({ code: String(code) });
    this.resuming.delete(conn);
    if (!conn.verified) return;
    if (this.connections.get(conn.deviceId) === conn) this.connections.delete(conn.deviceId);
    this.byUser.delete(conn.userId, conn);
    this.bySession.delete(conn.sessionId, conn);
    this.userSubs.release(this.d.names.liveUser(conn.userId));
    for (const g of conn.groups.keys()) this.groupSubs.release(this.d.names.liveGroup(g));
    for (const user of conn.watching) this.unwatchOne(conn, user);
    if (conn.announced) void this.presence.disconnected(conn.userId, conn.deviceId, conn.connId).catch((err: unknown) => this.d.log.warn({ err }, 'presence update failed'));
  }

  // ---- frames from clients ---------------------------------------------------------

  private received(ws: WebSocket<SocketData>, text: string, isBinary: boolean): void {
    const conn = ws.getUserData().conn;
    if (!conn?.open) return;
    if (!conn.verified) {
      // Held until the device check is done.
      void conn.ready.then(() => this.received(ws, text, isBinary));
      return;
    }
    if (isBinary) {
      conn.write(errorFrame('bad_frame', 'protocol v1 uses JSON text frames'));
      return;
    }
    let frame: ClientFrame;
    try {
      frame = parseClientFrame(text, this.limits);
    } catch (err) {
      if (!(err instanceof FrameError)) throw err;
      conn.write(frameOf(err, idOf(text)));
      return;
    }
    if (frame.op === 'resume') {
      if (conn.state !== 'awaiting-resume') conn.write(errorFrame('already_resumed', 'resume comes once, first, right after connecting'));
      else this.beginResume(conn, frame, true);
      return;
    }
    if (conn.state === 'awaiting-resume') this.beginResume(conn, { epoch: '', offset: 0 }, false);
    this.handle(conn, frame);
  }

  private handle(conn: Connection, frame: Exclude<ClientFrame, { op: 'resume' }>): void {
    switch (frame.op) {
      case 'ping':
        conn.write('{"op":"pong"}');
        return;
      case 'send':
        if (this.draining) {
          conn.write(errorFrame('draining', 'this gateway is shutting down: reconnect and send again with the same id', { id: frame.id }));
          return;
        }
        if (!conn.sends.take()) {
          this.d.metrics.gatewaySends.inc({ kind: 'to' in frame && 'group' in frame.to ? 'group' : 'direct', outcome: 'refused' });
          if (++conn.refusedSends >= REFUSALS_BEFORE_CLOSE) conn.close(CLOSE.rateLimited, 'rate limited: slow down');
          else conn.write(errorFrame('rate_limited', `at most ${this.d.config.sendsPerSecond} sends per second`, { id: frame.id }));
          return;
        }
        conn.refusedSends = 0;
        conn.sendQueue = conn.sendQueue.then(() => this.send(conn, frame));
        return;
      case 'ack':
        void this.ack(conn, frame.upTo).catch((err: unknown) => this.fail(conn, err, 'ack'));
        return;
      case 'typing':
      case 'signal':
        void this.relay(conn, frame).catch((err: unknown) => this.fail(conn, err, frame.op));
        return;
      case 'presence.watch':
        void this.watch(conn, frame.users).catch((err: unknown) => this.fail(conn, err, 'presence.watch'));
        return;
      case 'presence.unwatch':
        for (const user of frame.users) this.unwatchOne(conn, user);
        return;
    }
  }

  /** A frame over the limit: said in an error frame, then the connection is closed with 1009 (message too big). */
  private tooLarge(ws: WebSocket<SocketData>, bytes: number): void {
    const conn = ws.getUserData().conn;
    if (!conn?.open) return;
    conn.write(errorFrame('too_large', `a frame of ${bytes} bytes is over the limit of ${this.d.config.maxFrameBytes}`, { limit: this.d.config.maxFrameBytes }));
    conn.close(1009, 'frame too large');
  }

  private fail(conn: Connection, err: unknown, op: string, id?: string): void {
    if (err instanceof FrameError) {
      conn.write(frameOf(err, id));
      return;
    }
    this.d.log.error({ err, op, device: conn.deviceId }, 'frame failed');
    conn.write(errorFrame('internal', `${op} failed on the server: retry`, id === undefined ? {} : { id }));
  }

  private async send(conn: Connection, frame: Extract<ClientFrame, { op: 'send' }>): Promise<void> {
    try {
      conn.write(await this.sending.send(conn, frame));
    } catch (err) {
      this.d.metrics.gatewaySends.inc({ kind: 'group' in frame.to ? 'group' : 'direct', outcome: 'refused' });
      this.fail(conn, err, 'send', frame.id);
    }
  }

  /** Acknowledged entries are deleted, their expiry cancelled, and each sender told (if the recipient's settings allow). */
  private async ack(conn: Connection, upTo: number): Promise<void> {
    const acked = [...conn.delivered].filter(([offset]) => offset <= upTo);
    if (acked.length === 0) return;
    for (const [offset] of acked) conn.delivered.delete(offset);
    // An entry the expiry sweeper removed meanwhile was expired, not delivered: no receipt, no event.
    const deleted = await Promise.all(acked.map(([offset]) => this.inbox.delete(offset)));
    const messages = acked.filter((_, i) => deleted[i]).map(([offset, json]) => ({ offset, m: JSON.parse(json) as StoredMessage }));
    if (messages.length === 0) return;
    await this.expiry.cancel(messages.map(({ offset, m }) => ({ offset, messageId: m.id, holder: conn.deviceId, reason: this.expiry.deadline(m.ts, m.ttl).reason })));
    this.d.metrics.gatewayAcks.inc(messages.length);
    const deliveredAt = new Date();
    this.events.record(
      messages.map(({ offset, m }) => ({
        type: 'messaging.MessageDelivered' as const,
        data: { messageId: m.id, senderUserId: m.from.user, recipientUserId: conn.userId, recipientDeviceId: conn.deviceId, offset: BigInt(offset), deliveredAt },
      })),
    );
    for (const { m } of messages) {
      if (m.from.user !== conn.userId) {
        const relation = await this.directory.relation(conn.userId, m.from.user);
        if (!visibleTo(relation.receipts, relation)) continue;
      }
      const receipt = JSON.stringify({ op: 'receipt', id: m.id, state: 'delivered', user: conn.userId, device: conn.deviceId });
      this.d.nats.nc.publish(this.d.names.liveUser(m.from.user), live.frame(m.from.device, receipt));
    }
  }

  /** typing and signal: ephemeral, over core NATS only; dropped when nobody is there, and silently for a block. */
  private async relay(conn: Connection, frame: Extract<ClientFrame, { op: 'typing' | 'signal' }>): Promise<void> {
    const from = { user: conn.userId, device: conn.deviceId };
    if ('group' in frame.to) {
      if (!(await this.directory.isMember(frame.to.group, conn.userId))) throw new FrameError('not_member', `you are not a member of group ${frame.to.group}`);
      const typing = JSON.stringify({ op: 'typing', from, group: frame.to.group, state: frame.op === 'typing' ? frame.state : 'start' });
      this.d.nats.nc.publish(this.d.names.liveGroup(frame.to.group), live.groupFrame(conn.deviceId, typing));
      return;
    }
    const to = frame.to;
    if ((await this.directory.relation(to.user, conn.userId)).blocked) return;
    if (frame.op === 'typing') {
      this.d.nats.nc.publish(this.d.names.liveUser(to.user), live.frame('*', JSON.stringify({ op: 'typing', from, state: frame.state })));
    } else {
      const device = (to as { device: string }).device;
      this.d.nats.nc.publish(this.d.names.liveUser(to.user), live.frame(device, JSON.stringify({ op: 'signal', from, data: frame.data })));
    }
  }

  // ---- resume ----------------------------------------------------------------------

  private beginResume(conn: Connection, from: { epoch: string; offset: number }, explicit: boolean): void {
    if (conn.state !== 'awaiting-resume') return;
    clearTimeout(conn.resumeTimer);
    conn.resumeTimer = undefined;
    conn.state = 'resuming';
    this.resuming.add(conn);
    void this.resume(conn, from, explicit).catch((err: unknown) => {
      this.d.metrics.gatewayRecoveries.inc({ outcome: 'failed' });
      this.d.log.warn({ err, device: conn.deviceId }, 'resume failed');
      conn.close(1011, 'resume failed: reconnect');
    });
  }

  /**
   * Sends everything the device has not acknowledged, then what arrived live
   * meanwhile, then `synced`. Device entries are all sent (every held one is
   * unacknowledged, and with several senders a lower offset can arrive after
   * a higher one); group entries from after the offset and the joining.
   */
  private async resume(conn: Connection, from: { epoch: string; offset: number }, explicit: boolean): Promise<void> {
    const started = performance.now();
    await conn.ready;
    if (!conn.verified || !conn.open) return;
    const [lost, last] = await Promise.all([this.expiry.lostOffset(conn.deviceId), this.inbox.lastOffset()]);
    const resync = explicit && ((from.epoch !== '' && from.epoch !== this.epoch) || lost > from.offset || from.offset > last);
    const after = resync ? 0 : from.offset;
    if (resync) conn.write('{"op":"resync"}');
    const [own, ...groups] = await Promise.all([
      this.inbox.held(this.d.names.inboxDevice(conn.deviceId), 1),
      ...[...conn.groups].map(([g, since]) => this.inbox.held(this.d.names.inboxGroup(g), after + 1, since)),
    ]);
    const backlog: { entry: HeldEntry; own: boolean }[] = [...(own ?? []).map((entry) => ({ entry, own: true }))];
    for (const list of groups) {
      for (const entry of list) if ((JSON.parse(entry.json) as StoredMessage).from.device !== conn.deviceId) backlog.push({ entry, own: false });
    }
    backlog.sort((a, b) => a.entry.offset - b.entry.offset);
    for (const { entry, own: isOwn } of backlog) conn.deliver(entry.offset, msgFrame(this.epoch, entry), isOwn ? entry.json : undefined);
    this.d.metrics.gatewayDeliveries.inc({ path: 'backlog' }, backlog.length);
    const lastBacklog = backlog.at(-1)?.entry.offset ?? 0;
    for (const b of conn.buffer) {
      if (b.offset === 0) conn.write(b.frame);
      else if (b.json !== undefined) conn.deliver(b.offset, b.frame, b.json);
      else if (b.offset > lastBacklog) conn.deliver(b.offset, b.frame);
    }
    conn.buffer = [];
    this.resuming.delete(conn);
    if (!conn.open) return;
    conn.state = 'live';
    for (const g of conn.groups.keys()) conn.ws.subscribe(`g/${g}`);
    // After a resync the device is settled up to what was lost, or its next resume would resync again.
    conn.write(JSON.stringify({ op: 'synced', epoch: this.epoch, offset: Math.max(conn.highest, after, resync ? lost : 0) }));
    this.d.metrics.gatewayRecoveries.inc({ outcome: resync ? 'resync' : 'ok' });
    this.d.metrics.gatewayBacklogSeconds.observe((performance.now() - started) / 1000);
  }

  // ---- live frames from other gateways -----------------------------------------------

  private userLive(subject: string, data: Uint8Array): void {
    const started = performance.now();
    const msg = live.parseUser(Buffer.from(data).toString('utf8'));
    if (!msg) return;
    if (msg.kind === 'kick') {
      const conn = this.connections.get(msg.device);
      if (conn && conn.connId !== msg.connId) conn.close(CLOSE.elsewhere, 'this device connected again elsewhere');
      return;
    }
    if (msg.kind === 'message') {
      const conn = this.connections.get(msg.device);
      if (!conn) return;
      const frame = msgFrame(this.epoch, msg.entry);
      if (conn.state === 'live') {
        conn.deliver(msg.entry.offset, frame, msg.entry.json);
        this.d.metrics.gatewayDeliveries.inc({ path: 'live' });
      } else conn.buffer.push({ offset: msg.entry.offset, frame, json: msg.entry.json });
      this.d.metrics.gatewayFanoutSeconds.observe((performance.now() - started) / 1000);
      return;
    }
    const user = subject.slice(subject.lastIndexOf('.') + 1);
    const targets = msg.device === '*' ? this.byUser.get(user) : [this.connections.get(msg.device)].filter((c) => c?.userId === user);
    for (const conn of targets) {
      if (!conn) continue;
      if (conn.state === 'live') conn.write(msg.frame);
      else conn.buffer.push({ offset: 0, frame: msg.frame });
    }
  }

  /** One publish reaches every local member's socket through uWS topics; the sender's own socket is skipped. */
  private groupLive(subject: string, data: Uint8Array): void {
    const started = performance.now();
    const msg = live.parseGroup(Buffer.from(data).toString('utf8'));
    if (!msg) return;
    const group = subject.slice(subject.lastIndexOf('.') + 1);
    const topic = `g/${group}`;
    const frame = msg.kind === 'message' ? msgFrame(this.epoch, msg.entry) : msg.frame;
    // The sender's own socket, when it is here and subscribed, publishes: uWS then skips it.
    const sender = this.connections.get(msg.senderDevice);
    const fromHere = sender?.state === 'live' && sender.groups.has(group);
    if (fromHere) sender.ws.publish(topic, frame, false, false);
    else this.app.publish(topic, frame, false, false);
    for (const conn of this.resuming) {
      if (!conn.groups.has(group) || conn === sender) continue;
      conn.buffer.push({ offset: msg.kind === 'message' ? msg.entry.offset : 0, frame });
    }
    if (msg.kind === 'message') {
      this.d.metrics.gatewayDeliveries.inc({ path: 'live' }, this.app.numSubscribers(topic) - (fromHere ? 1 : 0));
      this.d.metrics.gatewayFanoutSeconds.observe((performance.now() - started) / 1000);
    }
  }

  // ---- presence ------------------------------------------------------------------------

  /** Watches the users whose settings let this user see them; the others get no answer at all. */
  private async watch(conn: Connection, users: string[]): Promise<void> {
    const allowed: string[] = [];
    for (const user of users) {
      if (conn.watching.has(user)) continue;
      const relation = user === conn.userId ? undefined : await this.directory.relation(user, conn.userId);
      if (!relation || visibleTo(relation.presence, relation)) allowed.push(user);
    }
    const states = await this.presence.states(allowed);
    for (const s of states) {
      if (!conn.open || conn.watching.has(s.user)) continue;
      conn.watching.add(s.user);
      this.watchers.add(s.user, conn);
      this.presence.watch(s.user, s.state);
      conn.write(presenceFrame(s));
    }
  }

  private unwatchOne(conn: Connection, user: string): void {
    if (!conn.watching.delete(user)) return;
    this.watchers.delete(user, conn);
    this.presence.unwatch(user);
  }

  private presenceChanged(change: PresenceState): void {
    const frame = presenceFrame(change);
    for (const conn of this.watchers.get(change.user)) conn.write(frame);
  }

  /** A logout, suspension or password change ends the connections its tokens opened; a removed device is disconnected too. */
  private revoked(r: Revocation): void {
    if (r.kind === 'user') {
      for (const conn of this.byUser.get(r.id)) if (conn.issuedAt <= r.notBefore) conn.close(CLOSE.auth, 'signed out: log in again');
      return;
    }
    for (const conn of this.bySession.get(r.id)) conn.close(CLOSE.auth, 'signed out: log in again');
  }

  // ---- directory changes ----------------------------------------------------------------

  /** Members added or removed reach the sockets already connected, without waiting for a reconnect; a removed device is disconnected. */
  private directoryChanged(raw: Parameters<typeof decodeMessage>[1]): void {
    let events;
    try {
      events = decodeMessage(this.d.store.registry, raw);
    } catch (err) {
      this.d.log.warn({ err, subject: raw.subject }, 'undecodable messaging event');
      return;
    }
    for (const event of events) {
      if (event.type === 'messaging.GroupCreated') for (const user of event.data.members) this.joinGroup(user, event.data.groupId, event.data.createdAt);
      else if (event.type === 'messaging.GroupMemberAdded') this.joinGroup(event.data.userId, event.data.groupId, event.data.addedAt);
      else if (event.type === 'messaging.GroupMemberRemoved') this.leaveGroup(event.data.userId, event.data.groupId);
      else if (event.type === 'messaging.DeviceRemoved') this.connections.get(event.data.deviceId)?.close(CLOSE.auth, 'this device was removed');
    }
  }

  private joinGroup(user: string, group: string, since: Date): void {
    for (const conn of this.byUser.get(user)) {
      if (!conn.verified || conn.groups.has(group)) continue;
      conn.groups.set(group, since);
      this.groupSubs.acquire(this.d.names.liveGroup(group));
      if (conn.state === 'live') conn.ws.subscribe(`g/${group}`);
    }
  }

  private leaveGroup(user: string, group: string): void {
    for (const conn of this.byUser.get(user)) {
      if (!conn.groups.delete(group)) continue;
      this.groupSubs.release(this.d.names.liveGroup(group));
      if (conn.state === 'live') conn.ws.unsubscribe(`g/${group}`);
    }
  }

  // ---- housekeeping --------------------------------------------------------------------

  private expired(entry: Scheduled): void {
    this.events.record([
      { type: 'messaging.MessageExpired', data: { messageId: entry.messageId, recipientDeviceId: entry.holder, offset: BigInt(entry.offset), reason: entry.reason, expiredAt: new Date() } },
    ]);
    const conn = this.connections.get(entry.holder);
    conn?.delivered.delete(entry.offset);
  }

  private closeSlowConnections(): void {
    for (const conn of this.connections.values()) {
      if (conn.open && conn.ws.getBufferedAmount() > this.d.config.maxBackpressureBytes) conn.close(CLOSE.tooSlow, 'too slow: reconnect and resume');
    }
  }

  /** An HTTP answer produced asynchronously: uWS needs onAborted first, and nothing written to a response the client dropped. */
  private answerLater(res: HttpResponse, produce: () => Promise<{ status: string; type: string; body: string }>): void {
    let aborted = false;
    res.onAborted(() => {
      aborted = true;
    });
    produce().then(
      ({ status, type, body }) => {
        if (!aborted) res.cork(() => res.writeStatus(status).writeHeader('content-type', type).end(body));
      },
      (err: unknown) => {
        this.d.log.error({ err }, 'gateway endpoint failed');
        if (!aborted) res.cork(() => res.writeStatus('500 Internal Server Error').writeHeader('content-type', 'application/json').end('{"code":"internal","message":"internal error"}'));
      },
    );
  }
}

/** The `id` of a refused frame, when one can be read, so the client can match the error to its request. */
function idOf(text: string): string | undefined {
  try {
    const id = (JSON.parse(text) as { id?: unknown }).id;
    return typeof id === 'string' && id.length <= 128 ? id : undefined;
  } catch {
    return undefined;
  }
}
