/**
 * Progress of long replay work: on a terminal, one line redrawn a few times a
 * second with done/total, events/s and ETA; elsewhere (CI, pipes) nothing until
 * the final summary line, which always goes to stdout.
 */
export class Progress {
  private done = 0;
  private readonly started = performance.now();
  private lastDraw = 0;
  private readonly tty: boolean;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly unit = 'events',
  ) {
    this.tty = Boolean(this.out.isTTY);
  }

  private readonly out = process.stderr;

  add(n = 1): void {
    this.set(this.done + n);
  }

  /** For work measured by position (a checkpoint) rather than counted. */
  set(done: number): void {
    this.done = done;
    if (!this.tty) return;
    const now = performance.now();
    if (now - this.lastDraw < 200) return;
    this.lastDraw = now;
    this.out.write(`\r${this.line(now)}\u001b[K`);
  }

  private line(now: number): string {
    const seconds = (now - this.started) / 1000;
    const rate = seconds > 0 ? this.done / seconds : 0;
    const pct = this.total > 0 ? Math.min(100, (this.done / this.total) * 100) : 100;
    const eta = rate > 0 && this.total > this.done ? `${Math.ceil((this.total - this.done) / rate)} s` : '-';
    return `${this.label}: ${this.done.toLocaleString('en')}/${this.total.toLocaleString('en')} (${pct.toFixed(1)} %), ${Math.round(rate).toLocaleString('en')} ${this.unit}/s, ETA ${eta}`;
  }

  /**
   * The final line: what was done, how fast, and anything the caller adds.
   * `counted` names what the line reports when the bar followed something
   * else (an export's bar follows stream positions, its summary counts events).
   */
  finish(extra = '', counted: { count: number; unit: string } = { count: this.done, unit: this.unit }): void {
    const seconds = (performance.now() - this.started) / 1000;
    const rate = seconds > 0 ? counted.count / seconds : 0;
    if (this.tty) this.out.write('\r\u001b[K');
    process.stdout.write(
      `${this.label}: ${counted.count.toLocaleString('en')} ${counted.unit} in ${seconds.toFixed(2)} s (${Math.round(rate).toLocaleString('en')} ${counted.unit}/s)${extra ? `, ${extra}` : ''}\n`,
    );
  }
}
