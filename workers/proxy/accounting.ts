/**
 * What the proxy counts per user between two usage intervals: bytes from the
 * client (uplink) and to it (downlink), HTTP requests and connections
 * (tunnels, SOCKS connections and HTTP client connections). Keyed by user id,
 * apart from the user directory, so a user removed mid-interval is still
 * reported for what they moved before.
 */
export interface ProxyUsage {
  uplink: bigint;
  downlink: bigint;
  requests: number;
  connections: number;
}

interface Counters {
  uplink: number;
  downlink: number;
  requests: number;
  connections: number;
}

export class ProxyAccounting {
  private counters = new Map<string, Counters>();

  private of(userId: string): Counters {
    let c = this.counters.get(userId);
    if (!c) {
      c = { uplink: 0, downlink: 0, requests: 0, connections: 0 };
      this.counters.set(userId, c);
    }
    return c;
  }

  // Numbers, not bigints, on the hot path: one interval's bytes of one user stay far below 2^53.
  uplink(userId: string, bytes: number): void {
    this.of(userId).uplink += bytes;
  }

  downlink(userId: string, bytes: number): void {
    this.of(userId).downlink += bytes;
  }

  request(userId: string): void {
    this.of(userId).requests++;
  }

  connection(userId: string): void {
    this.of(userId).connections++;
  }

  /** Everything counted since the last take, and counting starts again from zero. */
  take(): Map<string, ProxyUsage> {
    const taken = new Map<string, ProxyUsage>();
    for (const [userId, c] of this.counters) taken.set(userId, { uplink: BigInt(c.uplink), downlink: BigInt(c.downlink), requests: c.requests, connections: c.connections });
    this.counters = new Map();
    return taken;
  }
}
