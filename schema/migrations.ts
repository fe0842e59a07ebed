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
  '2026-11-24-003-identity': {
    async up(db: Kysely<unknown>) {
      // The keyring, not a read model: rows are written by the command side and
      // deleted to forget a person. Never rebuilt from the log.
      await db.schema
        .createTable('person_keys')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('wrapped_key', 'bytea', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      await db.schema.alterTable('users').alterColumn('email', (c) => c.dropNotNull()).execute();
      await db.schema
        .alterTable('users')
        .addColumn('email_verified', 'boolean', (c) => c.notNull().defaultTo(false))
        .addColumn('roles', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'`))
        .addColumn('presence_visibility', 'text', (c) => c.notNull().defaultTo('contacts'))
        .addColumn('receipts_visibility', 'text', (c) => c.notNull().defaultTo('contacts'))
        .addColumn('totp_enabled', 'boolean', (c) => c.notNull().defaultTo(false))
        .addColumn('suspended_reason', 'text')
        .addColumn('updated_at', 'timestamptz')
        .execute();
      // Admin search by email prefix and by status.
      await db.schema.createIndex('users_email').on('users').column('email').execute();
      await db.schema.createIndex('users_status').on('users').columns(['status', 'id']).execute();
      await db.schema
        .createTable('proxy_credentials')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('generation', 'integer', (c) => c.notNull())
        .addColumn('vless_id', 'text', (c) => c.notNull())
        .addColumn('trojan_password', 'text', (c) => c.notNull())
        .addColumn('proxy_username', 'text', (c) => c.notNull())
        .addColumn('proxy_password', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('issued_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('api_keys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('roles', sql`text[]`, (c) => c.notNull())
        .addColumn('issued_at', 'timestamptz', (c) => c.notNull())
        .addColumn('revoked_at', 'timestamptz')
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('api_keys_user').on('api_keys').column('user_id').execute();
    },
  },
  '2026-11-24-004-audit': {
    async up(db: Kysely<unknown>) {
      // The audit worker's Merkle tree over <NS>_AUDIT (workers/audit/store.ts):
      // its frontier and size (leaf i is stream sequence i + 1), one row per leaf, interior nodes from level 8
      // up (lower ones are recomputed from at most 128 leaves), event id → leaf,
      // and the checkpoints it signed.
      await db.schema
        .createTable('audit_state')
        .addColumn('stream', 'text', (c) => c.primaryKey())
        .addColumn('tree_size', 'bigint', (c) => c.notNull())
        .addColumn('frontier', 'bytea', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
      await db.schema
        .createTable('audit_leaves')
        .addColumn('leaf_index', 'bigint', (c) => c.primaryKey())
        .addColumn('hash', 'bytea', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('audit_nodes')
        .addColumn('level', 'smallint', (c) => c.notNull())
        .addColumn('idx', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'bytea', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_nodes_pkey', ['level', 'idx'])
        .execute();
      await db.schema
        .createTable('audit_events')
        .addColumn('event_id', 'text', (c) => c.primaryKey())
        .addColumn('leaf_index', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('tree_size', 'bigint', (c) => c.primaryKey())
        .addColumn('root', 'bytea', (c) => c.notNull())
        .addColumn('note', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
        .execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};
