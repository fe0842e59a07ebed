/**
 * Which user each open connection through the core belongs to: client
 * endpoint (address:port) → user, learned from the access log. An endpoint
 * reused by a later connection belongs to whoever the later line names, so a
 * stale entry can never point a cut at another user's socket. Entries whose
 * socket is gone are pruned against `ss` (retain), and the table is bounded:
 * past `maxEntries` the oldest go first.
 */
import { endpointIp } from './access-log.js';

interface Entry {
  email: string;
  /** Order of recording: a prune removes only what was recorded before its socket listing began. */
  seq: number;
}

export class ConnectionTable {
  private readonly owners = new Map<string, Entry>();
  private readonly byUser = new Map<string, Set<string>>();
  private seq = 0;
  /** Entries dropped because the table was full (their connections can no longer be cut). */
  evicted = 0;

  constructor(private readonly maxEntries = 262_144) {}

  get size(): number {
    return this.owners.size;
  }

  /** The current recording position: pass it to retain() to spare entries recorded after it. */
  get mark(): number {
    return this.seq;
  }

  record(endpoint: string, email: string): void {
    this.forget(endpoint);
    // Re-inserted, so Map order stays oldest-first for eviction.
    this.owners.set(endpoint, { email, seq: ++this.seq });
    let endpoints = this.byUser.get(email);
    if (!endpoints) this.byUser.set(email, (endpoints = new Set()));
    endpoints.add(endpoint);
    while (this.owners.size > this.maxEntries) {
      this.forget(this.owners.keys().next().value!);
      this.evicted++;
    }
  }

  endpointsOf(email: string): ReadonlySet<string> {
    return this.byUser.get(email) ?? new Set();
  }

  /** Distinct client IPs of a user's open connections: what an IP limit counts. */
  ipsOf(email: string): Set<string> {
    return new Set([...this.endpointsOf(email)].map(endpointIp));
  }

  /** Drops entries recorded up to `mark` whose endpoint is not among the `live` sockets; answers how many went. */
  retain(live: ReadonlySet<string>, mark: number): number {
    let removed = 0;
    for (const [endpoint, entry] of this.owners) {
      if (entry.seq > mark || live.has(endpoint)) continue;
      this.forget(endpoint);
      removed++;
    }
    return removed;
  }

  forget(endpoint: string): void {
    const entry = this.owners.get(endpoint);
    if (!entry) return;
    this.owners.delete(endpoint);
    const endpoints = this.byUser.get(entry.email);
    endpoints?.delete(endpoint);
    if (endpoints?.size === 0) this.byUser.delete(entry.email);
  }

  clear(): void {
    this.owners.clear();
    this.byUser.clear();
  }
}
