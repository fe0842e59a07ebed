/**
 * One active instance per projector: a session-level Postgres advisory lock
 * held on a dedicated connection. Standbys poll for it; if the holder dies its
 * connection closes and the lock is released. The checkpoint update is also
 * fenced (see checkpoints.ts), so even a holder that lost its connection
 * without noticing cannot apply a batch twice.
 */
import pg from 'pg';

export class LeaderLock {
  private client: pg.Client | undefined;

  constructor(
    private readonly databaseUrl: string,
    private readonly key: string,
  ) {}

  /** Tries once; true when this instance now holds the lock. */
  async tryAcquire(): Promise<boolean> {
    if (!this.client) {
      const client = new pg.Client({ connectionString: this.databaseUrl, application_name: `relaygrid-lock:${this.key}` });
      // A broken lock connection means the lock is gone; the fenced checkpoint stops the batch.
      client.on('error', () => undefined);
      await client.connect();
      this.client = client;
    }
    const { rows } = await this.client.query<{ locked: boolean }>(
      'select pg_try_advisory_lock(hashtextextended($1, 0)) as locked',
      [`relaygrid.projector:${this.key}`],
    );
    return rows[0]?.locked === true;
  }

  /**
   * Whether the lock is still ours: a session lock lives as long as its connection, so a working
   * connection means it is held. For holders that do work outside a fenced write (the scheduler).
   */
  async held(): Promise<boolean> {
    if (!this.client) return false;
    try {
      await this.client.query('select 1');
      return true;
    } catch {
      return false;
    }
  }

  async release(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await client.end().catch(() => undefined);
  }
}
