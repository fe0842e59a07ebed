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
  '2026-11-25-005-messaging-directory': {
    async up(db: Kysely<unknown>) {
      // Read models of the messaging context (projectors/messaging), and the
      // gateway's view of who may reach whom. Names and columns are a contract with it.
      await db.schema
        .createTable('devices')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('identity_key', 'text', (c) => c.notNull())
        .addColumn('signed_prekey_id', 'integer', (c) => c.notNull())
        .addColumn('signed_prekey', 'text', (c) => c.notNull())
        .addColumn('signed_prekey_signature', 'text', (c) => c.notNull())
        .addColumn('registered_at', 'timestamptz', (c) => c.notNull())
        .addColumn('removed_at', 'timestamptz')
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('devices_user').on('devices').column('user_id').execute();
      // Command side, like person_keys: consumed by claims, never rebuilt from the log.
      await db.schema
        .createTable('one_time_prekeys')
        .addColumn('device_id', 'text', (c) => c.notNull())
        .addColumn('key_id', 'integer', (c) => c.notNull())
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('one_time_prekeys_pkey', ['device_id', 'key_id'])
        .execute();
      await db.schema
        .createTable('contacts')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('contact_id', 'text', (c) => c.notNull())
        .addColumn('added_at', 'timestamptz')
        .addPrimaryKeyConstraint('contacts_pkey', ['user_id', 'contact_id'])
        .execute();
      // Presence fan-out asks "whose contact am I".
      await db.schema.createIndex('contacts_contact').on('contacts').column('contact_id').execute();
      await db.schema
        .createTable('blocks')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('blocked_id', 'text', (c) => c.notNull())
        .addColumn('blocked_at', 'timestamptz')
        .addPrimaryKeyConstraint('blocks_pkey', ['user_id', 'blocked_id'])
        .execute();
      await db.schema
        .createTable('chat_groups')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('group_members')
        .addColumn('group_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('added_at', 'timestamptz')
        .addPrimaryKeyConstraint('group_members_pkey', ['group_id', 'user_id'])
        .execute();
      await db.schema.createIndex('group_members_user').on('group_members').column('user_id').execute();
    },
  },
  '2026-11-26-006-fleet': {
    async up(db: Kysely<unknown>) {
      // Read models of the fleet and usage contexts (projectors/fleet, projectors/usage).
      // Profile secrets are not here: the fleet opens them from the log (producers/fleet/profiles.ts).
      await db.schema
        .createTable('fleet_nodes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('address', 'text', (c) => c.notNull())
        .addColumn('region', 'text', (c) => c.notNull())
        .addColumn('country', 'text', (c) => c.notNull())
        .addColumn('city', 'text', (c) => c.notNull())
        .addColumn('labels', sql`text[]`, (c) => c.notNull())
        .addColumn('roles', sql`text[]`, (c) => c.notNull())
        .addColumn('health', 'text', (c) => c.notNull())
        .addColumn('health_reason', 'text')
        .addColumn('drained', 'boolean', (c) => c.notNull())
        .addColumn('retired', 'boolean', (c) => c.notNull())
        .addColumn('nats_user', 'text')
        .addColumn('nats_password_hash', 'text')
        .addColumn('desired_template', 'text')
        .addColumn('desired_rollout', 'text')
        .addColumn('applied_template', 'text')
        .addColumn('applied_version', 'text')
        .addColumn('applied_at', 'timestamptz')
        .addColumn('last_error', 'text')
        .addColumn('registered_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('fleet_profiles')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('port', 'integer', (c) => c.notNull())
        .addColumn('labels', sql`text[]`, (c) => c.notNull())
        .addColumn('settings', 'jsonb', (c) => c.notNull())
        .addColumn('removed', 'boolean', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('fleet_rollouts')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('planned_by', 'text', (c) => c.notNull())
        .addColumn('planned_at', 'timestamptz', (c) => c.notNull())
        .addColumn('wave', 'integer', (c) => c.notNull())
        .addColumn('waves', 'jsonb', (c) => c.notNull())
        .addColumn('targets', 'jsonb', (c) => c.notNull())
        .addColumn('max_rejections', 'integer', (c) => c.notNull())
        .addColumn('applied', 'integer', (c) => c.notNull())
        .addColumn('rejected', 'integer', (c) => c.notNull())
        .addColumn('status_reason', 'text')
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('fleet_rollout_nodes')
        .addColumn('rollout_id', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('reported_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('fleet_rollout_nodes_pkey', ['rollout_id', 'node_id'])
        .execute();
      // Usage: ticks seen (a tick sent twice from an agent's spool counts once), and sums per hour.
      await db.schema
        .createTable('usage_ticks')
        .addColumn('tick_id', 'text', (c) => c.primaryKey())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('interval_end', 'timestamptz', (c) => c.notNull())
        .execute();
      for (const [table, key] of [['usage_user_hourly', 'user_id'], ['usage_node_hourly', 'node_id']] as const) {
        await db.schema
          .createTable(table)
          .addColumn(key, 'text', (c) => c.notNull())
          .addColumn('hour', 'timestamptz', (c) => c.notNull())
          .addColumn('uplink', 'bigint', (c) => c.notNull())
          .addColumn('downlink', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint(`${table}_pkey`, [key, 'hour'])
          .execute();
      }
    },
  },
  '2026-11-27-007-plans': {
    async up(db: Kysely<unknown>) {
      // Read models of the plans context (projectors/plans/plans.projection.ts), and the user's time zone.
      await db.schema.alterTable('users').addColumn('time_zone', 'text', (c) => c.notNull().defaultTo('UTC')).execute();
      await db.schema
        .createTable('plans')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('allowance_bytes', 'bigint')
        .addColumn('reset_strategy', 'text', (c) => c.notNull())
        .addColumn('validity_kind', 'text', (c) => c.notNull())
        .addColumn('validity_days', 'integer')
        .addColumn('on_hold_timeout_days', 'integer')
        .addColumn('ip_limit', 'integer')
        .addColumn('node_labels', sql`text[]`, (c) => c.notNull())
        .addColumn('inbound_kinds', sql`text[]`, (c) => c.notNull())
        .addColumn('price_minor', 'bigint', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('next_plan_id', 'text')
        .addColumn('overage', 'text', (c) => c.notNull())
        .addColumn('retired', 'boolean', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('subscriptions')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('plan_id', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('status_cause', 'text', (c) => c.notNull())
        .addColumn('phase', 'text', (c) => c.notNull())
        .addColumn('limited', 'boolean', (c) => c.notNull())
        .addColumn('disabled_reason', 'text')
        .addColumn('starts_at', 'timestamptz', (c) => c.notNull())
        .addColumn('period_start', 'timestamptz')
        .addColumn('period_end', 'timestamptz')
        .addColumn('time_zone', 'text', (c) => c.notNull())
        .addColumn('allowance_bytes', 'bigint')
        .addColumn('used_uplink_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('used_downlink_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('reset_strategy', 'text', (c) => c.notNull())
        .addColumn('ip_limit', 'integer')
        .addColumn('node_labels', sql`text[]`, (c) => c.notNull())
        .addColumn('inbound_kinds', sql`text[]`, (c) => c.notNull())
        .addColumn('overage', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz')
        .addColumn('on_hold_until', 'timestamptz')
        .addColumn('next_plan_id', 'text')
        .addColumn('next_due_at', 'timestamptz')
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      // Who has access (enforcement reads status = 'active' or a soft overage); what falls due (the scheduler).
      await db.schema.createIndex('subscriptions_status').on('subscriptions').columns(['status', 'user_id']).execute();
      await db.schema.createIndex('subscriptions_next_due').on('subscriptions').column('next_due_at').where(sql.ref('next_due_at'), 'is not', null).execute();
      await db.schema
        .createTable('subscription_grants')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('grant_id', 'text', (c) => c.notNull())
        .addColumn('bytes', 'bigint', (c) => c.notNull())
        .addColumn('used_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('expires_at', 'timestamptz')
        .addColumn('granted_by', 'text', (c) => c.notNull())
        .addColumn('granted_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('subscription_grants_pkey', ['user_id', 'grant_id'])
        .execute();
    },
  },
  '2026-11-28-008-metering': {
    async up(db: Kysely<unknown>) {
      // Metering (docs/metering.md). Period boundaries and notices: the plans projector's, in its transaction.
      await db.schema
        .createTable('subscription_periods')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('period_start', 'timestamptz', (c) => c.notNull())
        .addColumn('period_end', 'timestamptz')
        .addColumn('ended_at', 'timestamptz')
        .addColumn('allowance_bytes', 'bigint')
        .addPrimaryKeyConstraint('subscription_periods_pkey', ['user_id', 'period_start'])
        .execute();
      await db.schema
        .createTable('subscription_notices')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('notice', 'text', (c) => c.notNull())
        .addColumn('noted_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('subscription_notices_pkey', ['user_id', 'notice'])
        .execute();
      // The metering projector's, from usage ticks: its own tick ledger, usage per period, ticks no period covers yet, grants drawn.
      await db.schema.createTable('metering_ticks').addColumn('tick_id', 'text', (c) => c.primaryKey()).execute();
      await db.schema
        .createTable('subscription_usage')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('period_start', 'timestamptz', (c) => c.notNull())
        .addColumn('allowance_bytes', 'bigint')
        .addColumn('uplink_bytes', 'bigint', (c) => c.notNull())
        .addColumn('downlink_bytes', 'bigint', (c) => c.notNull())
        .addColumn('grant_bytes', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('last_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('subscription_usage_pkey', ['user_id', 'period_start'])
        .execute();
      await db.schema
        .createTable('metering_pending')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('tick_id', 'text', (c) => c.notNull())
        .addColumn('at', 'timestamptz', (c) => c.notNull())
        .addColumn('uplink_bytes', 'bigint', (c) => c.notNull())
        .addColumn('downlink_bytes', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('metering_pending_pkey', ['user_id', 'tick_id'])
        .execute();
      await db.schema
        .createTable('subscription_grant_usage')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('grant_id', 'text', (c) => c.notNull())
        .addColumn('granted_at', 'timestamptz', (c) => c.notNull())
        .addColumn('used_bytes', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('subscription_grant_usage_pkey', ['user_id', 'grant_id', 'granted_at'])
        .execute();
      // Expiry reminders are due from the expiry (workers/plans/metering-worker.ts).
      await db.schema.createIndex('subscriptions_expires').on('subscriptions').column('expires_at').where(sql.ref('expires_at'), 'is not', null).execute();
    },
  },
  '2026-11-28-009-connection-history': {
    async up(db: Kysely<unknown>) {
      // The connection history (projectors/usage/connections.projection.ts); client IPs only sealed.
      await db.schema
        .createTable('connection_history')
        .addColumn('connection_id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('inbound_tag', 'text')
        .addColumn('port', 'integer')
        .addColumn('client_ip_sealed', 'bytea')
        .addColumn('opened_at', 'timestamptz', (c) => c.notNull())
        .addColumn('closed_at', 'timestamptz')
        .addColumn('uplink', 'bigint', (c) => c.notNull())
        .addColumn('downlink', 'bigint', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      // A user's history, newest first, paged by (opened_at, connection_id).
      await db.schema.createIndex('connection_history_user').on('connection_history').expression(sql`user_id, opened_at desc, connection_id desc`).execute();
    },
  },
  '2026-12-06-010-metering-fillfactor': {
    async up(db: Kysely<unknown>) {
      // Every interval updates each active user's usage row once: room left in each page lets the new
      // version stay on it (a HOT update, no new primary-key entry), the old one pruned on a later visit.
      await sql`alter table subscription_usage set (fillfactor = 50)`.execute(db);
    },
  },
  '2026-12-07-090-subscriptions-past-due': {
    async up(db: Kysely<unknown>) {
      // Billing's mark over a subscription whose renewal charge failed (subscription.decider.ts, MarkPastDue).
      await db.schema.alterTable('subscriptions').addColumn('past_due_invoice_id', 'text').addColumn('past_due_until', 'timestamptz').execute();
    },
  },
  '2026-12-07-180-plan-overage-price': {
    async up(db: Kysely<unknown>) {
      // Soft overage charged per GiB with the next renewal (plans.PlanCreated/PlanUpdated v2).
      await db.schema.alterTable('plans').addColumn('overage_price_minor', 'bigint').execute();
    },
  },
  '2026-12-07-170-orders-invoices': {
    async up(db: Kysely<unknown>) {
      // Orders, invoices and credit notes as customers and operators read them (projectors/billing/*.projection.ts).
      // Money is integer minor units of the row's currency; lines are the priced lines as JSON.
      await db.schema
        .createTable('orders')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('plan_id', 'text', (c) => c.notNull())
        .addColumn('months', 'integer', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('lines', 'jsonb', (c) => c.notNull())
        .addColumn('subtotal_minor', 'bigint', (c) => c.notNull())
        .addColumn('tax_rate_bp', 'integer', (c) => c.notNull())
        .addColumn('tax_country', 'text')
        .addColumn('tax_minor', 'bigint', (c) => c.notNull())
        .addColumn('total_minor', 'bigint', (c) => c.notNull())
        .addColumn('coupon', 'text')
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('payment_method_id', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('provider_ref', 'text')
        .addColumn('instructions', 'text')
        .addColumn('attempts', 'integer', (c) => c.notNull())
        .addColumn('failure_reason', 'text')
        .addColumn('next_attempt_at', 'timestamptz')
        .addColumn('invoice_id', 'text')
        .addColumn('period_start', 'timestamptz')
        .addColumn('period_end', 'timestamptz')
        .addColumn('refunded_minor', 'bigint', (c) => c.notNull())
        .addColumn('placed_at', 'timestamptz', (c) => c.notNull())
        .addColumn('paid_at', 'timestamptz')
        .addColumn('fulfilled_at', 'timestamptz')
        .addColumn('cancelled_at', 'timestamptz')
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('orders_by_user').on('orders').columns(['user_id', 'placed_at']).execute();
      await db.schema.createIndex('orders_by_status').on('orders').columns(['status', 'updated_at']).execute();
      await db.schema.createIndex('orders_by_paid_at').on('orders').column('paid_at').where(sql.ref('paid_at'), 'is not', null).execute();
      await db.schema
        .createTable('invoices')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('order_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('number', 'text')
        .addColumn('series', 'text')
        .addColumn('sequence', 'integer')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('lines', 'jsonb', (c) => c.notNull())
        .addColumn('subtotal_minor', 'bigint', (c) => c.notNull())
        .addColumn('tax_rate_bp', 'integer', (c) => c.notNull())
        .addColumn('tax_country', 'text')
        .addColumn('tax_minor', 'bigint', (c) => c.notNull())
        .addColumn('total_minor', 'bigint', (c) => c.notNull())
        .addColumn('credited_minor', 'bigint', (c) => c.notNull())
        .addColumn('period_start', 'timestamptz', (c) => c.notNull())
        .addColumn('period_end', 'timestamptz', (c) => c.notNull())
        .addColumn('time_zone', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('finalized_at', 'timestamptz')
        .addColumn('paid_at', 'timestamptz')
        .addColumn('voided_at', 'timestamptz')
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      // Two invoices with one number would be a projection bug the database refuses loudly.
      await db.schema.createIndex('invoices_number').on('invoices').columns(['series', 'sequence']).unique().execute();
      await db.schema.createIndex('invoices_by_user').on('invoices').columns(['user_id', 'created_at']).execute();
      await db.schema
        .createTable('credit_notes')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('invoice_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('number', 'text', (c) => c.notNull())
        .addColumn('series', 'text', (c) => c.notNull())
        .addColumn('sequence', 'integer', (c) => c.notNull())
        .addColumn('amount_minor', 'bigint', (c) => c.notNull())
        .addColumn('currency', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('issued_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('credit_notes_number').on('credit_notes').columns(['series', 'sequence']).unique().execute();
      await db.schema.createIndex('credit_notes_by_invoice').on('credit_notes').column('invoice_id').execute();
    },
  },
  '2026-12-07-160-webhooks': {
    async up(db: Kysely<unknown>) {
      // Integrators' endpoints (projectors/billing/webhook-endpoints.projection.ts). No secret here: the
      // delivery worker opens it from the log (producers/billing/webhooks.ts).
      await db.schema
        .createTable('webhook_endpoints')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('url', 'text', (c) => c.notNull())
        .addColumn('event_types', sql`text[]`, (c) => c.notNull())
        .addColumn('description', 'text')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('disabled_reason', 'text')
        .addColumn('secret_version', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('secret_rotated_at', 'timestamptz')
        .addColumn('disabled_at', 'timestamptz')
        .addColumn('deleted_at', 'timestamptz')
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      // The outbox (workers/billing/webhook-delivery.ts): one row per (cause event, endpoint), keyed by the
      // webhook id derived from both, so a cause seen twice queues nothing the second time. Operational
      // state, not a read model: no rebuild recreates it (that would send everything again).
      await db.schema
        .createTable('webhook_deliveries')
        .addColumn('webhook_id', 'text', (c) => c.primaryKey())
        .addColumn('endpoint_id', 'text', (c) => c.notNull())
        .addColumn('event_type', 'text', (c) => c.notNull())
        .addColumn('cause_event_id', 'text', (c) => c.notNull())
        .addColumn('cause_type', 'text', (c) => c.notNull())
        .addColumn('cause_stream', 'text', (c) => c.notNull())
        .addColumn('cause_seq', 'bigint', (c) => c.notNull())
        .addColumn('payload', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'timestamptz')
        .addColumn('last_status_code', 'integer')
        .addColumn('final_reason', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('finished_at', 'timestamptz')
        .execute();
      await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').column('next_attempt_at').where(sql.ref('status'), '=', 'pending').execute();
      await db.schema.createIndex('webhook_deliveries_endpoint').on('webhook_deliveries').expression(sql`endpoint_id, created_at desc, webhook_id desc`).execute();
      // The delivery log: one row per attempt, written before the request goes out and completed after it.
      await db.schema
        .createTable('webhook_attempts')
        .addColumn('webhook_id', 'text', (c) => c.notNull())
        .addColumn('attempt', 'integer', (c) => c.notNull())
        .addColumn('started_at', 'timestamptz', (c) => c.notNull())
        .addColumn('finished_at', 'timestamptz')
        .addColumn('status_code', 'integer')
        .addColumn('latency_ms', 'integer')
        .addColumn('error', 'text')
        .addPrimaryKeyConstraint('webhook_attempts_pkey', ['webhook_id', 'attempt'])
        .execute();
    },
  },
  '2026-12-07-210-coupons': {
    async up(db: Kysely<unknown>) {
      // Discount coupons (projectors/billing/coupons.projection.ts). The read model serves the admin API only:
      // redeem and peek decide from the log (producers/billing/coupons.ts).
      await db.schema
        .createTable('coupons')
        .addColumn('code', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('percent_off', 'integer')
        .addColumn('amount_off_minor', 'bigint')
        .addColumn('currency', 'text')
        .addColumn('expires_at', 'timestamptz')
        .addColumn('max_uses', 'integer')
        .addColumn('uses', 'integer', (c) => c.notNull())
        .addColumn('disabled_at', 'timestamptz')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '2026-12-07-200-payment-methods': {
    async up(db: Kysely<unknown>) {
      // Users' saved payment methods (projectors/billing/payment-methods.projection.ts). No token here: the
      // provider's reference stays in the log, read only to charge (producers/billing/payment-methods.ts).
      // The card's brand, last four and expiry are sealed under the person's key, so forgetting them
      // erases these rows' details too; null when the key was already gone when the row was written.
      await db.schema
        .createTable('payment_methods')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('provider', 'text', (c) => c.notNull())
        .addColumn('details_sealed', 'bytea')
        .addColumn('is_default', 'boolean', (c) => c.notNull())
        .addColumn('added_at', 'timestamptz', (c) => c.notNull())
        .addColumn('removed_at', 'timestamptz')
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      // A user's list, and the projector's read of a user's rows when the default moves.
      await db.schema.createIndex('payment_methods_user').on('payment_methods').columns(['user_id', 'added_at']).where(sql.ref('removed_at'), 'is', null).execute();
    },
  },
  '2026-12-07-300-edge-sites': {
    async up(db: Kysely<unknown>) {
      // Edge sites (projectors/edge/sites.projection.ts). Name uniqueness is the log's (domain reservations), not a
      // unique index here: a read model that lags must not decide who gets a name.
      await db.schema
        .createTable('edge_sites')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('domain', 'text', (c) => c.notNull())
        .addColumn('aliases', sql`text[]`, (c) => c.notNull())
        .addColumn('node_labels', sql`text[]`, (c) => c.notNull())
        // json, not jsonb: jsonb reorders object keys, and a site's response headers keep the order they were given in.
        .addColumn('settings', 'json', (c) => c.notNull())
        .addColumn('blocked', 'boolean', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .addColumn('deleted_at', 'timestamptz')
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('edge_sites_owner').on('edge_sites').columns(['owner_id', 'created_at']).where(sql.ref('deleted_at'), 'is', null).execute();
      // One row per (site, node): the agent wiring upserts what each node last reported. Operational state, not a read model.
      await db.schema
        .createTable('edge_site_deployments')
        .addColumn('site_id', 'text', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('applied_version', 'bigint')
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('error', 'text')
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('edge_site_deployments_pkey', ['site_id', 'node_id'])
        .execute();
    },
  },
  '2026-12-08-170-analytics': {
    async up(db: Kysely<unknown>) {
      // Analytics read models (projectors/analytics, docs/analytics.md): usage per user x node x hour and
      // per UTC day, per node and hour, each user's last traffic, with their own tick ledger (they run in
      // their own transaction), and each user's plan spans from the plans stream (the plan dimension).
      await db.schema.createTable('analytics_ticks').addColumn('tick_id', 'text', (c) => c.primaryKey()).execute();
      for (const [table, time] of [['analytics_usage_hourly', 'hour'], ['analytics_usage_daily', 'day']] as const) {
        await db.schema
          .createTable(table)
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn(time, time === 'hour' ? 'timestamptz' : 'date', (c) => c.notNull())
          .addColumn('node_id', 'text', (c) => c.notNull())
          .addColumn('uplink', 'bigint', (c) => c.notNull())
          .addColumn('downlink', 'bigint', (c) => c.notNull())
          .addPrimaryKeyConstraint(`${table}_pkey`, ['user_id', time, 'node_id'])
          .execute();
      }
      await db.schema
        .createTable('analytics_node_hourly')
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('hour', 'timestamptz', (c) => c.notNull())
        .addColumn('uplink', 'bigint', (c) => c.notNull())
        .addColumn('downlink', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('analytics_node_hourly_pkey', ['node_id', 'hour'])
        .execute();
      // The fleet's hours in time order (a fleet trend reads every node's rows of a range).
      await db.schema.createIndex('analytics_node_hourly_hour').on('analytics_node_hourly').columns(['hour', 'node_id']).execute();
      await db.schema
        .createTable('analytics_user_activity')
        .addColumn('user_id', 'text', (c) => c.primaryKey())
        .addColumn('first_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('analytics_user_activity_last').on('analytics_user_activity').column('last_at').execute();
      await db.schema
        .createTable('analytics_plan_spans')
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('started_at', 'timestamptz', (c) => c.notNull())
        .addColumn('plan_id', 'text', (c) => c.notNull())
        .addColumn('cause', 'text', (c) => c.notNull())
        .addColumn('ended_at', 'timestamptz')
        .addColumn('end_cause', 'text')
        .addPrimaryKeyConstraint('analytics_plan_spans_pkey', ['user_id', 'started_at'])
        .execute();
      // Export jobs (producers/analytics/exports.ts): operational state, not a read model (no rebuild touches it).
      await db.schema
        .createTable('analytics_exports')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('owner_id', 'text', (c) => c.notNull())
        .addColumn('scope_user_id', 'text')
        .addColumn('dataset', 'text', (c) => c.notNull())
        .addColumn('format', 'text', (c) => c.notNull())
        .addColumn('range_from', 'timestamptz', (c) => c.notNull())
        .addColumn('range_to', 'timestamptz', (c) => c.notNull())
        .addColumn('personal', 'boolean', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('rows_total', 'bigint')
        .addColumn('rows_done', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('bytes', 'bigint')
        .addColumn('error', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('finished_at', 'timestamptz')
        .execute();
      await db.schema.createIndex('analytics_exports_owner').on('analytics_exports').columns(['owner_id', 'created_at']).execute();
    },
  },
  '2026-12-08-120-edge-observability': {
    async up(db: Kysely<unknown>) {
      // The site's cache purges as cache-key versions (SiteSpec.cachePurge), set by edge.SiteCachePurged.
      await db.schema.alterTable('edge_sites').addColumn('cache_purge', 'json', (c) => c.notNull().defaultTo(sql`'{"generation":0,"paths":[]}'::json`)).execute();
      // Per-site traffic per hour and node (projectors/edge/traffic.projection.ts), and the ticks it counted.
      await db.schema.createTable('edge_traffic_ticks').addColumn('tick_id', 'text', (c) => c.primaryKey()).execute();
      let table = db.schema
        .createTable('edge_site_traffic')
        .addColumn('site_id', 'text', (c) => c.notNull())
        .addColumn('hour', 'timestamptz', (c) => c.notNull())
        .addColumn('node_id', 'text', (c) => c.notNull());
      // The counts of usage.SiteTrafficTicked, snake_cased (written out: a migration does not follow later code).
      const counts = ['requests_1xx', 'requests_2xx', 'requests_3xx', 'requests_4xx', 'requests_5xx', 'sent_bytes', 'received_bytes', 'cache_hits', 'cache_misses', 'cache_bypasses', 'waf_blocks', 'upstream_requests', 'upstream_errors', 'upstream_millis'];
      for (const column of counts) table = table.addColumn(column, 'bigint', (c) => c.notNull());
      await table.addPrimaryKeyConstraint('edge_site_traffic_pkey', ['site_id', 'hour', 'node_id']).execute();
    },
  },
  '2026-12-08-100-edge-acme': {
    async up(db: Kysely<unknown>) {
      // Each site's ACME certificate state (projectors/edge/certificates.projection.ts): what the ACME scheduler
      // reads to know what is due. Names and dates only; the certificate and its key are in <NS>_EDGE_CERTS, sealed.
      await db.schema
        .createTable('edge_certificates')
        .addColumn('site_id', 'text', (c) => c.primaryKey())
        .addColumn('domains', sql`text[]`, (c) => c.notNull())
        .addColumn('serial', 'text')
        .addColumn('not_before', 'timestamptz')
        .addColumn('not_after', 'timestamptz')
        .addColumn('renew_at', 'timestamptz')
        .addColumn('failures', 'integer', (c) => c.notNull())
        .addColumn('retry_at', 'timestamptz')
        .addColumn('last_error', 'text')
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .addColumn('last_seq', 'bigint', (c) => c.notNull())
        .execute();
      // HTTP-01 answers being validated now (written by the ACME leader, handed to edge nodes in edge-desired), and
      // which nodes said they serve them. Operational state: public by design (RFC 8555 §8.3), gone after the validation.
      await db.schema
        .createTable('edge_acme_challenges')
        .addColumn('token', 'text', (c) => c.primaryKey())
        .addColumn('site_id', 'text', (c) => c.notNull())
        .addColumn('key_authorization', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('edge_acme_challenge_acks')
        .addColumn('token', 'text', (c) => c.notNull().references('edge_acme_challenges.token').onDelete('cascade'))
        .addColumn('node_id', 'text', (c) => c.notNull())
        .addColumn('acked_at', 'timestamptz', (c) => c.notNull())
        .addPrimaryKeyConstraint('edge_acme_challenge_acks_pkey', ['token', 'node_id'])
        .execute();
    },
  },
  '2026-12-08-140-notifications': {
    async up(db: Kysely<unknown>) {
      // The notifications outbox (workers/notifications/outbox.ts): one row per notification, its id derived
      // from its cause, so a cause seen twice inserts nothing. Doubles as the in-app list. The rendered message
      // and any address the cause names are sealed under the person's key; null once they were forgotten.
      await db.schema
        .createTable('notifications')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('cause_event_id', 'text', (c) => c.notNull())
        .addColumn('cause_type', 'text', (c) => c.notNull())
        .addColumn('cause_stream', 'text', (c) => c.notNull())
        .addColumn('cause_seq', 'bigint', (c) => c.notNull())
        .addColumn('message_sealed', 'bytea')
        .addColumn('recipient_sealed', 'bytea')
        .addColumn('attachment', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('read_at', 'timestamptz')
        .execute();
      await db.schema.createIndex('notifications_user').on('notifications').columns(['user_id', 'created_at']).execute();
      // The sent-ledger: one row per (notification, channel); `sent` is final and unique by the primary key.
      await db.schema
        .createTable('notification_deliveries')
        .addColumn('notification_id', 'text', (c) => c.notNull().references('notifications.id').onDelete('cascade'))
        .addColumn('channel', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('next_attempt_at', 'timestamptz')
        .addColumn('last_error', 'text')
        .addColumn('final_reason', 'text')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('finished_at', 'timestamptz')
        .addPrimaryKeyConstraint('notification_deliveries_pkey', ['notification_id', 'channel'])
        .execute();
      await db.schema.createIndex('notification_deliveries_due').on('notification_deliveries').column('next_attempt_at').where(sql.ref('status'), '=', 'pending').execute();
    },
  },
};

export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve(migrations),
};
