/**
 * A core driver that runs nothing and acknowledges everything: the agent's
 * logic without a proxy core, for benchmarks with a thousand agents in a few
 * processes and for tests of the agent's protocol. It remembers what it was
 * told, and when.
 */
import type { CoreDriver, CoreUser, UserTraffic } from './driver.js';

export interface AckCall {
  op: 'start' | 'stop' | 'addUser' | 'removeUser';
  tag?: string;
  email?: string;
  at: number;
}

export class AckCoreDriver implements CoreDriver {
  readonly calls: AckCall[] = [];

  /** `now` stamps the calls (a bench across processes wants a finer, shared clock than Date.now). */
  constructor(private readonly now: () => number = Date.now) {}

  /** Traffic the next takeUserTraffic answers (then it is reset, as the core's counters are). */
  traffic = new Map<string, UserTraffic>();
  /** A configuration path for which test() answers this error text. */
  rejectWhen?: (configPath: string) => string | null;
  onExit?: CoreDriver['onExit'];
  /** Called on every user change, for benches that time them. */
  onUserChange?: (call: AckCall) => void;

  test(configPath: string): Promise<string | null> {
    return Promise.resolve(this.rejectWhen?.(configPath) ?? null);
  }

  /** While set, start() waits for it: a test holds an agent in the middle of applying. */
  startGate?: Promise<void>;
  /** While set, start() fails with it, as a core whose port is taken does. */
  startError?: string;

  async start(): Promise<void> {
    this.calls.push({ op: 'start', at: this.now() });
    await this.startGate;
    if (this.startError) throw new Error(this.startError);
  }

  stop(): Promise<void> {
    this.calls.push({ op: 'stop', at: this.now() });
    return Promise.resolve();
  }

  addUser(tag: string, user: CoreUser): Promise<void> {
    this.record({ op: 'addUser', tag, email: user.email, at: this.now() });
    return Promise.resolve();
  }

  removeUser(tag: string, email: string): Promise<void> {
    this.record({ op: 'removeUser', tag, email, at: this.now() });
    return Promise.resolve();
  }

  takeUserTraffic(): Promise<Map<string, UserTraffic>> {
    const taken = this.traffic;
    this.traffic = new Map();
    return Promise.resolve(taken);
  }

  private record(call: AckCall): void {
    this.calls.push(call);
    this.onUserChange?.(call);
  }
}
