/**
 * Kysely migrations, in code so the build carries them. Append new ones; never
 * edit one that has shipped.
 */
import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

const migrations: Record<string, Migration> = {
  '2026-11-23-001-projector-runtime': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('projector_checkpoints')
        .addColumn('projector', 'text', (c) => c.primaryKey())
        .addColumn('stream', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('event_id', 'text')
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      await db.schema
        .createTable('projector_failures')
        .addColumn('id', 'bigserial', (c) => c.primaryKey())
        .addColumn('projector', 'text', (c) => c.notNull())
        .addColumn('stream', 'text', (c) => c.notNull())
        .addColumn('seq', 'bigint', (c) => c.notNull())
        .addColumn('event_id', 'text')
        .addColumn('event_type', 'text')
        .addColumn('error', 'text', (c) => c.notNull())
        .addColumn('failed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .addColumn('resolved_at', 'timestamptz')
        .addColumn('resolution', 'text')
        .execute();
      await db.schema.createIndex('projector_failures_open').on('projector_failures').column('projector').where(sql.ref('resolved_at'), 'is', null).execute();
    },
  },
  '2026-11-23-002-users': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('users')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('display_name', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('registered_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};
