/**
 * Scheduled commands: fire every due item soon after its due time, at least once, whatever
 * restarts or extra workers — and exactly once in effect, because firing is a command that the
 * aggregate's decider refuses or ignores the second time for the same key (see "Scheduled
 * commands" in docs/architecture.md).
 *
 * - `due(now, limit)` is a read-model query: the items whose due time is at or before `now`, each
 *   with a stable key naming the occurrence ("subscription S, the period ending at T"). It stays
 *   true until the fired command's event is projected, so the scheduler remembers what it fired
 *   (for `refireAfterMs`) instead of firing it again while the read model catches up.
 * - `fire(item)` runs the command. It resolves when the occurrence is done, now or earlier (a
 *   refusal such as "already rolled" must resolve, not throw); a throw is a failure, counted,
 *   logged and retried with backoff.
 * - One instance per scheduler name fires (a Postgres advisory lock, the projectors' LeaderLock);
 *   the others are hot standbys that take over within `standbyPollMs` when the leader dies. A
 *   leader that dies mid-fire leaves its item due, and the next leader fires it again: the
 *   decider turns that second firing into a no-op.
 * - At most `concurrency` fires run at once; a slow fire holds one slot, not the whole batch.
 */
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import { LeaderLock } from '../../projectors/runtime/leader-lock.js';
import { LeaderLoop } from '../../projectors/runtime/leader-loop.js';
import { systemClock, type Clock } from './clock.js';
import { Wakeup } from './wakeup.js';

export interface SchedulerOptions<T> {
  /** Names the lock and the metrics' `scheduler` label: one leader per name. */
  name: string;
  /** Postgres to hold the leader lock on (a dedicated connection). */
  databaseUrl: string;
  /** Items due at `now` (due time <= now), oldest first, at most `limit`. */
  due(now: Date, limit: number): Promise<T[]>;
  keyOf(item: T): string;
  dueAtOf(item: T): Date;
  fire(item: T): Promise<void>;
  log: Logger;
  metrics: Pick<Metrics, 'schedulerFired' | 'schedulerFailed' | 'schedulerLag' | 'schedulerActive'>;
  clock?: Clock;
  /** How often the leader asks what is due when nothing wakes it (default 1000 ms). */
  pollMs?: number;
  /** How often a standby tries the lock (default 1000 ms). */
  standbyPollMs?: number;
  /** Fires running at once (default 8). */
  concurrency?: number;
  /** Items asked for per query beyond those already in hand (default 100). */
  batchSize?: number;
  /** A fired key is not fired again for this long while it still shows as due (default 60 s). */
  refireAfterMs?: number;
  /** Longest wait before retrying a failed fire (default 60 s; it starts at pollMs and doubles). */
  maxBackoffMs?: number;
  /** close() waits this long for fires in progress (default 10 s). */
  closeTimeoutMs?: number;
}

export interface Scheduler {
  /** Ask what is due now (after the clock moved, or an item was added), instead of at the next poll. */
  wake(): void;
  /** True while this instance holds the lock. */
  readonly leading: boolean;
  /** Stops asking, waits for the fires in progress (up to closeTimeoutMs), releases the lock. */
  close(): Promise<void>;
}

class LockLostError extends Error {
  constructor(name: string) {
    super(`scheduler ${name}: the leader lock's connection is gone`);
  }
}

interface Failure {
  attempts: number;
  retryAt: number;
}

export function runScheduler<T>(opts: SchedulerOptions<T>): Scheduler {
  const clock = opts.clock ?? systemClock;
  const pollMs = opts.pollMs ?? 1000;
  const concurrency = opts.concurrency ?? 8;
  const batchSize = opts.batchSize ?? 100;
  const refireAfterMs = opts.refireAfterMs ?? 60_000;
  const maxBackoffMs = opts.maxBackoffMs ?? 60_000;
  const label = { scheduler: opts.name };
  const log = opts.log.child({ scheduler: opts.name });
  const lock = new LeaderLock(opts.databaseUrl, `scheduler:${opts.name}`);
  const wakeup = new Wakeup();

  // Operational memory, in wall-clock milliseconds (not the injected clock, which decides only what is due).
  const inFlight = new Map<string, Promise<void>>();
  const firedAt = new Map<string, number>();
  const failures = new Map<string, Failure>();
  let leading = false;
  /** The last query had more ready items than free slots: a finished fire should look again at once. */
  let backlog = false;

  const start = (key: string, item: T) => {
    const run = Promise.resolve()
      .then(() => opts.fire(item))
      .then(
        () => {
          firedAt.set(key, Date.now());
          failures.delete(key);
          opts.metrics.schedulerFired.inc(label);
        },
        (err: unknown) => {
          const attempts = (failures.get(key)?.attempts ?? 0) + 1;
          const backoffMs = Math.min(pollMs * 2 ** (attempts - 1), maxBackoffMs);
          failures.set(key, { attempts, retryAt: Date.now() + backoffMs });
          opts.metrics.schedulerFailed.inc(label);
          log.warn({ err, key, attempts, backoffMs }, 'scheduled command failed; retrying');
        },
      )
      .finally(() => {
        inFlight.delete(key);
        if (backlog) wakeup.wake();
      });
    inFlight.set(key, run);
  };

  /** One look at what is due: fill the free slots, set the lag. */
  const cycle = async () => {
    const wallNow = Date.now();
    for (const [key, at] of firedAt) if (wallNow - at >= refireAfterMs) firedAt.delete(key);
    const now = clock.now();
    const known = inFlight.size + firedAt.size + failures.size;
    const items = await opts.due(now, batchSize + known);
    const seen = new Set<string>();
    const ready: [string, T][] = [];
    let oldest: number | undefined;
    for (const item of items) {
      const key = opts.keyOf(item);
      const dueAt = opts.dueAtOf(item).getTime();
      seen.add(key);
      // Never early, even if the due source's query is off.
      if (dueAt > now.getTime() || firedAt.has(key)) continue;
      oldest = Math.min(oldest ?? dueAt, dueAt);
      if (inFlight.has(key) || (failures.get(key)?.retryAt ?? 0) > wallNow) continue;
      ready.push([key, item]);
    }
    // A complete answer shows which fired keys the read model has caught up on: forget them.
    if (items.length < batchSize + known) {
      for (const key of firedAt.keys()) if (!seen.has(key)) firedAt.delete(key);
      for (const key of failures.keys()) if (!seen.has(key)) failures.delete(key);
    }
    opts.metrics.schedulerLag.set(label, oldest === undefined ? 0 : (now.getTime() - oldest) / 1000);
    const free = Math.max(0, concurrency - inFlight.size);
    for (const [key, item] of ready.slice(0, free)) start(key, item);
    backlog = ready.length > free;
  };

  const loop = new LeaderLoop({
    lock,
    log,
    standbyPollMs: opts.standbyPollMs ?? 1000,
    onRole: (leader) => {
      if (leader !== leading) log.info(leader ? 'leading: firing due items' : 'standing by');
      leading = leader;
      opts.metrics.schedulerActive.set(label, leader ? 1 : 0);
      if (!leader) opts.metrics.schedulerLag.set(label, 0);
    },
    work: async () => {
      while (!loop.closed) {
        // Between looks, so that a leader whose lock went (its connection dropped) stops firing.
        if (!(await lock.held())) throw new LockLostError(opts.name);
        await cycle();
        if (loop.closed) break;
        await wakeup.sleep(pollMs);
      }
    },
    isFenced: (err) => err instanceof LockLostError,
    onFailure: () => {
      leading = false;
      opts.metrics.schedulerActive.set(label, 0);
    },
  });

  const unsubscribe = clock.onChange?.(() => wakeup.wake());
  const running = loop.run().catch((err: unknown) => log.error({ err }, 'scheduler stopped'));

  return {
    wake: () => wakeup.wake(),
    get leading() {
      return leading;
    },
    close: async () => {
      if (loop.closed) return;
      loop.stop();
      unsubscribe?.();
      wakeup.wake();
      await running;
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, opts.closeTimeoutMs ?? 10_000, 'timeout').unref());
      const drained = await Promise.race([Promise.allSettled(inFlight.values()), timeout]);
      if (drained === 'timeout') log.warn({ inFlight: inFlight.size }, 'closing with scheduled commands still running; the next leader fires them again');
      await loop.release();
      leading = false;
      opts.metrics.schedulerActive.set(label, 0);
      opts.metrics.schedulerLag.set(label, 0);
    },
  };
}
