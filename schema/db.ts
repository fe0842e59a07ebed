import { Kysely, Migrator, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './database.js';
import { migrationProvider } from './migrations.js';

const INT8_OID = 20;

/**
 * int8 columns hold stream sequences: parse them as numbers, and refuse loudly
 * rather than round a value past 2^53 (64-bit byte counters are read as text).
 */
function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${value} does not fit a JavaScript number; select it ::text`);
  return n;
}

function getTypeParser(oid: number): (value: string) => unknown {
  if (oid === INT8_OID) return parseInt8;
  return pg.types.getTypeParser(oid) as (value: string) => unknown;
}

const types = { getTypeParser } as typeof pg.types;

export function createPool(databaseUrl: string, max = 10): pg.Pool {
  return new pg.Pool({ connectionString: databaseUrl, max, types });
}

export function createDb(pool: pg.Pool): Kysely<Database> {
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

export interface MigrationReport {
  applied: string[];
}

export async function migrateDatabase(db: Kysely<Database>): Promise<MigrationReport> {
  const migrator = new Migrator({ db, provider: migrationProvider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(JSON.stringify(error));
  return { applied: (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName) };
}
