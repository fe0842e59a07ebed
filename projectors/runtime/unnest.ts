/**
 * Set-based upsert through `unnest`: one statement for any number of rows,
 * one array parameter per column. Postgres plans it once and the round trip
 * count stays at one per table per batch.
 */
import { sql, type Kysely, type Transaction } from 'kysely';

export interface UnnestColumn<Row> {
  name: string;
  /** Postgres array type of the parameter, e.g. `text[]`, `timestamptz[]`, `bigint[]`. */
  arrayType: string;
  /** Cast applied to the unnested value, for column types arrays cannot carry directly (e.g. `text[]` from a `{a,b}` literal). */
  cast?: string;
  value(row: Row): unknown;
}

export async function upsertUnnest<Row, DB>(
  db: Kysely<DB> | Transaction<DB>,
  table: string,
  columns: readonly UnnestColumn<Row>[],
  rows: readonly Row[],
  conflictColumns: readonly string[],
  /** `nothing`: keep the row already there (append-only tables). */
  onConflict: 'update' | 'nothing' = 'update',
): Promise<void> {
  if (rows.length === 0) return;
  const names = sql.join(columns.map((c) => sql.id(c.name)));
  const arrays = sql.join(columns.map((c) => sql`${rows.map((r) => c.value(r))}::${sql.raw(c.arrayType)}`));
  const conflict = sql.join(conflictColumns.map((c) => sql.id(c)));
  const selected = columns.some((c) => c.cast)
    ? sql.join(columns.map((c) => (c.cast ? sql`${sql.id(c.name)}::${sql.raw(c.cast)}` : sql.id(c.name))))
    : sql`*`;
  const resolution =
    onConflict === 'nothing'
      ? sql`do nothing`
      : sql`do update set ${sql.join(columns.filter((c) => !conflictColumns.includes(c.name)).map((c) => sql`${sql.id(c.name)} = excluded.${sql.id(c.name)}`))}`;
  await sql`insert into ${sql.table(table)} (${names}) select ${selected} from unnest(${arrays}) as u(${names}) on conflict (${conflict}) ${resolution}`.execute(db);
}

/**
 * A `text[]` column for upsertUnnest: text[][] would need rectangular arrays,
 * so each row's array travels as one array literal. Only for values that are
 * tokens (no commas, quotes, braces or spaces), such as roles and labels.
 */
export function tokenArrayColumn<Row>(name: string, value: (row: Row) => readonly string[]): UnnestColumn<Row> {
  return { name, arrayType: 'text[]', cast: 'text[]', value: (row) => `{${value(row).join(',')}}` };
}

/**
 * Set-based update through `unnest`, for rows known to exist: only the given
 * columns change. Where an upsert would have to carry every NOT NULL column
 * (the insert half is checked first), this writes just what moved.
 */
export async function updateUnnest<Row, DB>(
  db: Kysely<DB> | Transaction<DB>,
  table: string,
  columns: readonly UnnestColumn<Row>[],
  rows: readonly Row[],
  keyColumns: readonly string[],
): Promise<void> {
  if (rows.length === 0) return;
  const names = sql.join(columns.map((c) => sql.id(c.name)));
  const arrays = sql.join(columns.map((c) => sql`${rows.map((r) => c.value(r))}::${sql.raw(c.arrayType)}`));
  const value = (c: UnnestColumn<Row>) => (c.cast ? sql`u.${sql.id(c.name)}::${sql.raw(c.cast)}` : sql`u.${sql.id(c.name)}`);
  const sets = sql.join(columns.filter((c) => !keyColumns.includes(c.name)).map((c) => sql`${sql.id(c.name)} = ${value(c)}`));
  const match = sql.join(keyColumns.map((k) => sql`t.${sql.id(k)} = u.${sql.id(k)}`), sql` and `);
  await sql`update ${sql.table(table)} as t set ${sets} from unnest(${arrays}) as u(${names}) where ${match}`.execute(db);
}
