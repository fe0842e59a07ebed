/**
 * One active instance of a role, the others hot standbys: take the leader lock
 * or wait and try again; while leading, run the work; on a failure, back off
 * (or, when another instance fenced this one out, give the lock up) and try
 * again; until closed. Shared by projectors and the audit worker.
 */
import type { Logger } from '../../infra/logger.js';
import { isTransientInfraError } from '../../infra/transient.js';
import type { LeaderLock } from './leader-lock.js';

export interface LeaderLoopOptions {
  lock: LeaderLock;
  log: Logger;
  standbyPollMs: number;
  /** Told whether this instance leads, after every attempt at the lock. */
  onRole(leader: boolean): void;
  /** The work while leading; returns when it is done or the loop is closed. */
  work(): Promise<void>;
  /** Another instance moved the shared position: stand by rather than retry. */
  isFenced(err: unknown): boolean;
  /** After a failed run of the work, before backing off. */
  onFailure?(): void;
}

export class LeaderLoop {
  private closedFlag = false;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: LeaderLoopOptions) {}

  get closed(): boolean {
    return this.closedFlag;
  }

  async run(): Promise<void> {
    const { lock, log } = this.opts;
    let backoffMs = 500;
    while (!this.closedFlag) {
      let leader = false;
      try {
        leader = await lock.tryAcquire();
      } catch (err) {
        log.warn({ err }, 'lock unavailable');
      }
      this.opts.onRole(leader);
      if (!leader) {
        await this.pause(this.opts.standbyPollMs);
        continue;
      }
      try {
        await this.opts.work();
        backoffMs = 500;
      } catch (err) {
        if (this.closedFlag) break;
        if (this.opts.isFenced(err)) {
          log.warn({ err }, 'another instance moved ahead; standing by');
          await lock.release();
        } else if (isTransientInfraError(err)) {
          log.warn({ err, backoffMs }, 'infrastructure unavailable; retrying');
        } else {
          log.error({ err }, 'failed; retrying');
        }
        this.opts.onFailure?.();
        await this.pause(backoffMs);
        backoffMs = Math.min(backoffMs * 2, 30_000);
      }
    }
  }

  /** Sleeps, but wakes at once when the loop is closed. */
  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** Ends the loop (the work must stop on its own); the lock is kept until release(). */
  stop(): void {
    this.closedFlag = true;
    this.wake?.();
  }

  release(): Promise<void> {
    return this.opts.lock.release();
  }

  async close(): Promise<void> {
    this.stop();
    await this.release();
  }
}
