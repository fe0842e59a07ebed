/**
 * A token bucket that may go into debt: a relay takes what a chunk it already
 * read costs, and waits as long as the debt needs to be refilled. Shared by
 * every connection of a user, so the rate holds across connections.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  /** `rate` tokens a second, at most `burst` saved up; starts full. */
  constructor(
    readonly rate: number,
    readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) * this.rate) / 1_000);
    this.last = t;
  }

  /** Takes `n` tokens, in debt if need be; answers how many ms until the bucket is out of debt (0: go on). */
  take(n: number): number {
    this.refill();
    this.tokens -= n;
    return this.tokens >= 0 ? 0 : (-this.tokens * 1_000) / this.rate;
  }

  /** Tokens in the bucket now (negative: in debt). */
  available(): number {
    this.refill();
    return this.tokens;
  }

  /** Takes one token only if there is one: for requests, which are refused rather than delayed. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
