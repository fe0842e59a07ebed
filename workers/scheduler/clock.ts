/**
 * Where schedulers get the time from. Production uses the system clock; tests use a ManualClock,
 * move it forward, and every scheduler that reads it is woken at once (no real waiting for due
 * times).
 */
export interface Clock {
  now(): Date;
  /** Clocks that jump call this after every change; the scheduler re-checks what is due. */
  onChange?(listener: () => void): () => void;
}

export const systemClock: Clock = { now: () => new Date() };

export class ManualClock implements Clock {
  private current: number;
  private readonly listeners = new Set<() => void>();

  constructor(start: Date) {
    this.current = start.getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  /** Moves the clock to `to` (never backwards: a scheduler's "due" must not un-happen) and wakes the schedulers. */
  set(to: Date): void {
    if (to.getTime() < this.current) throw new RangeError(`ManualClock: ${to.toISOString()} is before ${this.now().toISOString()}`);
    this.current = to.getTime();
    for (const listener of this.listeners) listener();
  }

  advance(ms: number): void {
    this.set(new Date(this.current + ms));
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
