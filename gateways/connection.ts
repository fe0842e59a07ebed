/**
 * One device's live connection: what it has been sent and not yet
 * acknowledged, whether it is still catching up (resume), and its limits.
 * Frames go out through `write`, which closes a connection that cannot keep
 * up (4008) rather than let anything be skipped.
 */
import type { WebSocket } from 'uWebSockets.js';
import { TokenBucket } from './limits.js';
import { CLOSE } from './protocol.js';

/** uWS user data: who connected, or why they may not. */
export interface SocketData {
  userId: string;
  deviceId: string;
  sessionId: string;
  /** When the access token was issued (ms). */
  issuedAt: number;
  connId: string;
  authError?: string;
  conn?: Connection;
}

/** One settled promise shared by every idle connection (an idle socket's memory is the budget). */
const SETTLED: Promise<void> = Promise.resolve();

export type ConnectionState = 'awaiting-resume' | 'resuming' | 'live' | 'closed';

export class Connection {
  state: ConnectionState = 'awaiting-resume';
  /** The device was found to be the user's and the connection registered: until then frames wait. */
  verified = false;
  /** Presence was told of this connection, so its close must be told too. */
  announced = false;
  /** Live frames that arrived while the backlog was being sent: offset (0 for ephemeral frames) and frame. */
  buffer: { offset: number; frame: string; json?: string }[] = [];
  /** Device-inbox entries sent and not yet acknowledged: offset → stored JSON (for the receipt and the event). */
  readonly delivered = new Map<number, string>();
  /** Highest offset written to this connection. */
  highest = 0;
  /** The groups of this user, and since when (a member is sent group messages from joining on). */
  readonly groups = new Map<string, Date>();
  readonly watching = new Set<string>();
  /** Sends are handled one after another, so a sender's messages are stored in the order it sent them. */
  sendQueue: Promise<void> = SETTLED;
  refusedSends = 0;
  resumeTimer: NodeJS.Timeout | undefined;
  /** Settles once the gateway has subscribed everything this connection needs (its groups loaded). */
  ready: Promise<void> = SETTLED;
  readonly sends: TokenBucket;

  readonly userId: string;
  readonly deviceId: string;
  readonly connId: string;
  readonly sessionId: string;
  /** When the access token it connected with was issued (ms): a user revocation covers tokens up to its instant. */
  readonly issuedAt: number;

  constructor(
    readonly ws: WebSocket<SocketData>,
    who: Pick<SocketData, 'userId' | 'deviceId' | 'connId' | 'sessionId' | 'issuedAt'>,
    private readonly limits: { sendsPerSecond: number; maxBackpressureBytes: number },
  ) {
    ({ userId: this.userId, deviceId: this.deviceId, connId: this.connId, sessionId: this.sessionId, issuedAt: this.issuedAt } = who);
    this.sends = new TokenBucket(limits.sendsPerSecond, limits.sendsPerSecond / 1000);
  }

  get open(): boolean {
    return this.state !== 'closed';
  }

  /** Writes one frame; a connection that has fallen too far behind is closed with 4008 instead. */
  write(frame: string): boolean {
    if (!this.open) return false;
    let result = 1;
    this.ws.cork(() => {
      result = this.ws.send(frame, false, false);
    });
    if (result === 2 || this.ws.getBufferedAmount() > this.limits.maxBackpressureBytes) {
      this.close(CLOSE.tooSlow, 'too slow: reconnect and resume');
      return false;
    }
    return true;
  }

  /** A stored message: remembered until acknowledged when it came from the device's own inbox. */
  deliver(offset: number, frame: string, deviceEntryJson?: string): void {
    if (deviceEntryJson !== undefined) {
      if (this.delivered.has(offset)) return;
      this.delivered.set(offset, deviceEntryJson);
    }
    if (offset > this.highest) this.highest = offset;
    this.write(frame);
  }

  close(code: number, reason: string): void {
    if (!this.open) return;
    this.state = 'closed';
    this.ws.end(code, reason);
  }
}
