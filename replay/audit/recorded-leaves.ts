/**
 * The audit worker's recorded leaf hashes (Postgres `audit_leaves`), read a
 * chunk at a time, for the loops that walk a log in index order (verify,
 * export): `get` answers synchronously within the loaded chunk (no promise
 * per leaf), and the next chunk is fetched while this one is in use,
 * overlapping the Postgres read with the NATS read.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import { leafHashes, loadTreeState } from '../../workers/audit/store.js';

const CHUNK = 10_000;

export class RecordedLeaves {
  private chunk: Buffer[] = [];
  private chunkStart = 0;
  private ahead: { start: number; rows: Promise<Buffer[]> } | undefined;

  private constructor(
    private readonly db: Kysely<Database>,
    readonly stream: string,
    readonly size: number,
  ) {}

  /** The records of the namespace's audit stream, when the worker has any. */
  static async open(db: Kysely<Database>, auditStream: string): Promise<RecordedLeaves | undefined> {
    try {
      const state = await loadTreeState(db, auditStream);
      return state.size > 0 ? new RecordedLeaves(db, auditStream, state.size) : undefined;
    } catch {
      // No audit tables, or another stream's: go without records.
      return undefined;
    }
  }

  /** The record of leaf `index` when its chunk is loaded, else undefined (then `load`). */
  get(index: number): Buffer | undefined {
    return this.chunk[index - this.chunkStart];
  }

  /** Loads the chunk starting at `index` (< size) and prefetches the one after it. */
  async load(index: number): Promise<Buffer> {
    const ahead = this.ahead;
    this.ahead = undefined;
    const rows = ahead?.start === index ? ahead.rows : this.fetch(index);
    // Read ahead before awaiting, so both reads overlap the stream read.
    const nextStart = index + CHUNK;
    if (nextStart < this.size) {
      this.ahead = { start: nextStart, rows: this.fetch(nextStart) };
      // A prefetch nobody awaits (the walk failed early) must not be an unhandled rejection.
      this.ahead.rows.catch(() => undefined);
    }
    this.chunk = await rows;
    this.chunkStart = index;
    return this.chunk[0]!;
  }

  async at(index: number): Promise<Buffer> {
    return this.get(index) ?? (await this.load(index));
  }

  private fetch(start: number): Promise<Buffer[]> {
    return leafHashes(this.db, start, Math.min(start + CHUNK, this.size));
  }
}
