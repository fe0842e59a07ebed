/**
 * Read-your-writes: a write answers with its event's stream sequence; a read
 * that passes it waits here until the projector has applied that far. One
 * LISTEN connection per process serves every waiter; a slow poll covers
 * notifications missed while that connection reconnects.
 */
import pg from 'pg';
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import { CHECKPOINT_CHANNEL } from './checkpoints.js';

interface Waiter {
  projector: string;
  seq: number;
  resolve(reached: boolean): void;
}

const FALLBACK_POLL_MS = 250;

export class CheckpointWatcher {
  private listener: pg.Client | undefined;
  private listening: Promise<void> | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly known = new Map<string, number>();
  private poll: NodeJS.Timeout | undefined;
  private readonly movers = new Set<{ projectors: ReadonlySet<string>; listener: () => void }>();

  constructor(
    private readonly databaseUrl: string,
    private readonly db: Kysely<Database>,
  ) {}

  async current(projector: string): Promise<number> {
    const row = await this.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', projector).executeTakeFirst();
    const seq = row?.seq ?? 0;
    this.note(projector, seq);
    return seq;
  }

  /** Resolves true once `projector` has applied `seq`, false after `timeoutMs`. */
  async waitFor(projector: string, seq: number, timeoutMs: number): Promise<boolean> {
    if ((this.known.get(projector) ?? 0) >= seq) return true;
    await this.listen();
    if ((await this.current(projector)) >= seq) return true;
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = {
        projector,
        seq,
        resolve: (reached) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          if (this.waiters.size === 0) this.stopPolling();
          resolve(reached);
        },
      };
      const timer = setTimeout(() => waiter.resolve(false), timeoutMs);
      this.waiters.add(waiter);
      this.startPolling();
    });
  }

  /**
   * One fallback poll for the whole process while anyone waits, reading each
   * awaited projector once per tick, however many requests wait on it.
   */
  private startPolling(): void {
    this.poll ??= setInterval(() => {
      for (const projector of new Set([...this.waiters].map((w) => w.projector))) {
        this.current(projector).catch(() => undefined);
      }
    }, FALLBACK_POLL_MS);
  }

  private stopPolling(): void {
    clearInterval(this.poll);
    this.poll = undefined;
  }

  /**
   * Records the checkpoint as Postgres reports it, not the highest ever seen:
   * notifications arrive in commit order, and a rebuild may move it back.
   */
  private note(projector: string, seq: number): void {
    this.known.set(projector, seq);
    for (const m of this.movers) if (m.projectors.has(projector)) m.listener();
    for (const waiter of this.waiters) {
      if (waiter.projector === projector && seq >= waiter.seq) waiter.resolve(true);
    }
  }

  /**
   * Calls `listener` whenever one of `projectors` commits a batch (workers
   * that act on what a projection just wrote, instead of polling it). While
   * the LISTEN connection is down nothing is called: pair it with a slow poll.
   */
  async onMove(projectors: readonly string[], listener: () => void): Promise<() => void> {
    const mover = { projectors: new Set(projectors), listener };
    this.movers.add(mover);
    await this.listen().catch(() => undefined);
    return () => this.movers.delete(mover);
  }

  private listen(): Promise<void> {
    this.listening ??= (async () => {
      const client = new pg.Client({ connectionString: this.databaseUrl, application_name: 'relaygrid-checkpoint-watcher' });
      client.on('notification', (msg) => {
        const [projector, seq] = (msg.payload ?? '').split(':');
        if (projector && seq) this.note(projector, Number(seq));
      });
      client.on('error', () => {
        // Fall back to polling; the next waitFor call reconnects.
        this.listener = undefined;
        this.listening = undefined;
      });
      await client.connect();
      await client.query(`listen ${CHECKPOINT_CHANNEL}`);
      this.listener = client;
    })().catch((err: unknown) => {
      // Let the next waitFor try again instead of failing forever with this error.
      this.listening = undefined;
      throw err;
    });
    return this.listening;
  }

  async close(): Promise<void> {
    for (const waiter of this.waiters) waiter.resolve(false);
    const client = this.listener;
    this.listener = undefined;
    this.listening = undefined;
    if (client) await client.end().catch(() => undefined);
  }
}
