/**
 * Batch folding for projections: rows keyed by id that events create or
 * change, and (a, b) pairs that events add or remove. Both
 * end in one statement per table, however many events the batch holds.
 */
import { sql, type Transaction } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { Database } from '../../schema/database.js';
import { upsertUnnest, type UnnestColumn } from './unnest.js';

/** What one event does to one row: creates it whole, or changes the row as it stands. An event that touches several rows gives several steps. */
export type RowStep<Row> = { id: string; create: Row } | { id: string; update: (row: Row) => Row } | undefined;

/**
 * The final row of every id the batch touches. Rows are read from the table
 * only for ids whose first step here is a change (on a rebuild, creations come
 * first, so nothing is read).
 */
export async function foldRows<Row>(
  events: readonly StoredEvent[],
  step: (event: StoredEvent) => RowStep<Row> | RowStep<Row>[],
  load: (ids: string[]) => Promise<[string, Row][]>,
): Promise<Row[]> {
  const steps = events.flatMap(step).filter((s) => s !== undefined);
  const first = new Map<string, boolean>();
  for (const s of steps) if (!first.has(s.id)) first.set(s.id, 'create' in s);
  const earlier = [...first].filter(([, creates]) => !creates).map(([id]) => id);
  const rows = new Map<string, Row>(earlier.length > 0 ? await load(earlier) : []);
  for (const s of steps) {
    if ('create' in s) rows.set(s.id, s.create);
    else {
      const row = rows.get(s.id);
      if (row) rows.set(s.id, s.update(row));
    }
  }
  return [...rows.values()];
}

/** The read-model tables keyed by a text `id`. */
type TableWithId = { [T in keyof Database]: Database[T] extends { id: string } ? T : never }[keyof Database];

/** `load` for foldRows over a table keyed by `id`: the stored rows, read inside the batch's transaction. */
export function storedById<Row extends { id: string }>(trx: Transaction<Database>, table: TableWithId) {
  return async (ids: string[]): Promise<[string, Row][]> => {
    const rows = (await trx.selectFrom(table).selectAll().where('id', 'in', ids).execute()) as Row[];
    return rows.map((row) => [row.id, row]);
  };
}

/** A table of (a, b, at) pairs: `at` of the pairs a batch leaves present, and those it leaves absent. */
export class PairFold {
  private readonly final = new Map<string, { a: string; b: string; at: Date | null }>();

  constructor(
    private readonly table: 'contacts' | 'blocks' | 'group_members',
    private readonly columns: readonly [string, string, string],
  ) {}

  set(a: string, b: string, at: Date): void {
    this.final.set(JSON.stringify([a, b]), { a, b, at });
  }

  unset(a: string, b: string): void {
    this.final.set(JSON.stringify([a, b]), { a, b, at: null });
  }

  async write(trx: Transaction<Database>): Promise<void> {
    const [ca, cb, cat] = this.columns;
    const all = [...this.final.values()];
    const present = all.filter((p) => p.at !== null);
    const absent = all.filter((p) => p.at === null);
    const columns: UnnestColumn<(typeof all)[number]>[] = [
      { name: ca, arrayType: 'text[]', value: (p) => p.a },
      { name: cb, arrayType: 'text[]', value: (p) => p.b },
      { name: cat, arrayType: 'timestamptz[]', value: (p) => p.at },
    ];
    await upsertUnnest(trx, this.table, columns, present, [ca, cb]);
    if (absent.length === 0) return;
    await sql`delete from ${sql.table(this.table)} where (${sql.id(ca)}, ${sql.id(cb)}) in (select * from unnest(${absent.map((p) => p.a)}::text[], ${absent.map((p) => p.b)}::text[]))`.execute(trx);
  }
}
