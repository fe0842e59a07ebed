/**
 * Runs a command against an aggregate: load (from the state cache when it has
 * the aggregate), decide, append with the last sequence seen. A stale
 * expectation means someone else appended first: drop the cached state, reload,
 * decide again, a bounded number of times, then give up with a typed conflict.
 */
import type { EventMeta, DomainEvent } from '../../contracts/envelope.js';
import { DomainError, fold, type Decider } from '../decider.js';
import type { Metrics } from '../../infra/metrics.js';
import type { EventKey } from '../../contracts/catalogue.js';
import { ConcurrencyConflictError, WrongExpectedSequenceError } from './errors.js';
import type { EventStore } from './event-store.js';
import { Lru } from './lru.js';

export interface HandleOptions {
  meta: EventMeta;
  /**
   * The caller has just minted the aggregate id, so the aggregate cannot exist:
   * decide on the initial state and append with expectation 0 without a read.
   * If it does exist after all, the conflict path reloads it.
   */
  assumeNew?: boolean;
  maxAttempts?: number;
}

export interface HandleResult<State, K extends EventKey> {
  /** Sequence of the appended message, or the aggregate's last sequence when nothing was decided. */
  seq: number;
  events: DomainEvent<K>[];
  state: State;
  duplicate: boolean;
}

interface Cached {
  state: unknown;
  seq: number;
}

/** What became of one decision: counted in `relaygrid_appends_total{outcome}`. */
export type AppendOutcome = 'appended' | 'duplicate' | 'conflict' | 'rejected';

export class CommandHandler {
  private readonly cache: Lru<string, Cached>;
  conflicts = 0;

  constructor(
    readonly store: EventStore,
    private readonly opts: { metrics?: Pick<Metrics, 'appends'>; cacheSize?: number } = {},
  ) {
    this.cache = new Lru(opts.cacheSize ?? 10_000);
  }

  private count(outcome: AppendOutcome): void {
    this.opts.metrics?.appends.inc({ outcome });
  }

  async handle<State, Command, K extends EventKey>(
    decider: Decider<State, Command, K>,
    subject: string,
    command: Command,
    opts: HandleOptions,
  ): Promise<HandleResult<State, K>> {
    const maxAttempts = opts.maxAttempts ?? 5;
    let assumeNew = opts.assumeNew ?? false;
    for (let attempt = 1; attempt <= maxAttempts; attempt++) {
      const { state, seq } = assumeNew ? { state: decider.initialState, seq: 0 } : await this.load(decider, subject);
      let events: DomainEvent<K>[];
      try {
        events = decider.decide(command, state);
      } catch (err) {
        if (err instanceof DomainError) this.count('rejected');
        throw err;
      }
      if (events.length === 0) return { seq, events, state, duplicate: false };
      try {
        const result = await this.store.append(subject, events as readonly DomainEvent[], { expectedSeq: seq, meta: opts.meta, fresh: assumeNew });
        const next = fold(decider, state, events);
        this.cache.set(subject, { state: next, seq: result.seq });
        this.count(result.duplicate ? 'duplicate' : 'appended');
        return { seq: result.seq, events, state: next, duplicate: result.duplicate };
      } catch (err) {
        if (!(err instanceof WrongExpectedSequenceError)) throw err;
        this.conflicts++;
        this.count('conflict');
        this.cache.delete(subject);
        assumeNew = false;
      }
    }
    throw new ConcurrencyConflictError(subject, maxAttempts);
  }

  /** Current state and last sequence of an aggregate: cached state plus whatever came after it. */
  async load<State, K extends EventKey>(decider: Decider<State, unknown, K>, subject: string): Promise<{ state: State; seq: number }> {
    const cached = this.cache.get(subject) as { state: State; seq: number } | undefined;
    const { events, lastSeq } = await this.store.read(subject, cached?.seq ?? 0);
    const state = fold(decider, cached?.state ?? decider.initialState, events as unknown as DomainEvent<K>[]);
    if (events.length > 0) this.cache.set(subject, { state, seq: lastSeq });
    return { state, seq: lastSeq };
  }
}
