/**
 * Token buckets for the gateway's send limits. In memory, per gateway: a
 * client reconnecting to another gateway starts with a full bucket, which
 * bounds what it gains to one burst per reconnect (and reconnects are
 * limited by the login and token rules). Pure logic, unit-tested.
 */
export class TokenBucket {
  private tokens: number;
  private updated: number;

  constructor(
    private readonly capacity: number,
    private readonly perMs: number,
    now = Date.now(),
  ) {
    this.tokens = capacity;
    this.updated = now;
  }

  /** Takes one token if there is one. */
  take(now = Date.now()): boolean {
    this.tokens = Math.min(this.capacity, this.tokens + (now - this.updated) * this.perMs);
    this.updated = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Full again: nothing to remember. */
  isFull(now = Date.now()): boolean {
    return this.tokens + (now - this.updated) * this.perMs >= this.capacity;
  }
}

/** One bucket per key (sender→recipient pairs), dropping full buckets now and then so the map stays small. */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>();
  private lastSweep = 0;

  constructor(
    private readonly capacity: number,
    private readonly windowMs: number,
  ) {}

  take(key: string, now = Date.now()): boolean {
    if (now - this.lastSweep > this.windowMs) {
      this.lastSweep = now;
      for (const [k, bucket] of this.buckets) if (bucket.isFull(now)) this.buckets.delete(k);
    }
    let bucket = this.buckets.get(key);
    if (!bucket) {
      bucket = new TokenBucket(this.capacity, this.capacity / this.windowMs, now);
      this.buckets.set(key, bucket);
    }
    return bucket.take(now);
  }

  get size(): number {
    return this.buckets.size;
  }
}
