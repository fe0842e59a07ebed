/**
 * Failed proxy authentications per client IP: after `burst` failures an IP
 * gets refused (wrong or right credentials alike) until the bucket refills,
 * one attempt every `refillMs`. Bounded: past `maxIps` tracked addresses the
 * fullest buckets are not worth keeping and the table starts again.
 */
import { TokenBucket } from './token-bucket.js';

export interface AuthThrottleOptions {
  burst?: number;
  refillMs?: number;
  maxIps?: number;
}

export class AuthThrottle {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly burst: number;
  private readonly rate: number;
  private readonly maxIps: number;

  constructor(o: AuthThrottleOptions = {}) {
    this.burst = o.burst ?? 10;
    this.rate = 1_000 / (o.refillMs ?? 6_000);
    this.maxIps = o.maxIps ?? 65_536;
  }

  /** Whether this IP may try to authenticate now. */
  allowed(ip: string): boolean {
    const bucket = this.buckets.get(ip);
    return !bucket || bucket.available() >= 1;
  }

  failed(ip: string): void {
    let bucket = this.buckets.get(ip);
    if (!bucket) {
      if (this.buckets.size >= this.maxIps) this.buckets.clear();
      bucket = new TokenBucket(this.rate, this.burst);
      this.buckets.set(ip, bucket);
    }
    bucket.take(1);
  }
}
