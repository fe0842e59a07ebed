/**
 * The Postgres read models and the projector bookkeeping, as Kysely types.
 * Columns are described here once; migrations.ts creates them.
 */
import type { ColumnType, Generated } from 'kysely';
import type { CachePurge } from '../producers/edge/model.js';
import type { SiteSettings } from '../producers/edge/site-settings.js';
import type { Visibility } from '../producers/identity/privacy.js';

export interface ProjectorCheckpointTable {
  projector: string;
  stream: string;
  /** Last stream sequence applied: everything up to and including it is in the read model. */
  seq: number;
  event_id: string | null;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface ProjectorFailureTable {
  id: Generated<number>;
  projector: string;
  stream: string;
  seq: number;
  event_id: string | null;
  event_type: string | null;
  error: string;
  failed_at: ColumnType<Date, Date | string | undefined, never>;
  resolved_at: Date | null;
  resolution: string | null;
}

export type UserStatus = 'active' | 'suspended' | 'forgotten';

export interface UserTable {
  id: string;
  /** Null once the person is forgotten (their data key is gone). */
  email: string | null;
  display_name: string | null;
  status: UserStatus;
  registered_at: Date;
  email_verified: boolean;
  roles: string[];
  presence_visibility: Visibility;
  receipts_visibility: Visibility;
  totp_enabled: boolean;
  suspended_reason: string | null;
  /** IANA zone plan periods start in (identity.TimeZoneChanged); 'UTC' until chosen. */
  time_zone: string;
  updated_at: Date | null;
  /** Stream sequence of the last event folded into this row. */
  last_seq: number;
}

/** The keyring of crypto-shredding: one wrapped data key per person (not a read model). */
export interface PersonKeyTable {
  user_id: string;
  wrapped_key: Buffer;
  created_at: ColumnType<Date, Date | undefined, never>;
}

/** What proxy nodes need to let a user in (the fleet renders configurations from it). */
export interface ProxyCredentialTable {
  user_id: string;
  generation: number;
  vless_id: string;
  trojan_password: string;
  proxy_username: string;
  proxy_password: string;
  /** active, or revoked while the user is suspended. */
  status: 'active' | 'revoked';
  issued_at: Date;
  last_seq: number;
}

export interface ApiKeyTable {
  id: string;
  user_id: string;
  name: string;
  roles: string[];
  issued_at: Date;
  revoked_at: Date | null;
  last_seq: number;
}

export interface Database {
  projector_checkpoints: ProjectorCheckpointTable;
  projector_failures: ProjectorFailureTable;
  users: UserTable;
  person_keys: PersonKeyTable;
  proxy_credentials: ProxyCredentialTable;
  api_keys: ApiKeyTable;
  audit_state: AuditStateTable;
  audit_leaves: AuditLeafTable;
  audit_nodes: AuditNodeTable;
  audit_events: AuditEventTable;
  audit_checkpoints: AuditCheckpointTable;
  devices: DeviceTable;
  one_time_prekeys: OneTimePreKeyTable;
  contacts: ContactTable;
  blocks: BlockTable;
  chat_groups: ChatGroupTable;
  group_members: GroupMemberTable;
  fleet_nodes: FleetNodeTable;
  fleet_profiles: FleetProfileTable;
  fleet_rollouts: FleetRolloutTable;
  fleet_rollout_nodes: FleetRolloutNodeTable;
  usage_ticks: UsageTickTable;
  usage_user_hourly: UsageUserHourlyTable;
  usage_node_hourly: UsageNodeHourlyTable;
  plans: PlanTable;
  subscriptions: SubscriptionTable;
  subscription_grants: SubscriptionGrantTable;
  connection_history: ConnectionHistoryTable;
  subscription_periods: SubscriptionPeriodTable;
  subscription_notices: SubscriptionNoticeTable;
  metering_ticks: MeteringTickTable;
  subscription_usage: SubscriptionUsageTable;
  metering_pending: MeteringPendingTable;
  subscription_grant_usage: SubscriptionGrantUsageTable;
  webhook_endpoints: WebhookEndpointTable;
  webhook_deliveries: WebhookDeliveryTable;
  webhook_attempts: WebhookAttemptTable;
  orders: OrderTable;
  invoices: InvoiceTable;
  credit_notes: CreditNoteTable;
  coupons: CouponTable;
  payment_methods: PaymentMethodTable;
  edge_sites: EdgeSiteTable;
  edge_site_deployments: EdgeSiteDeploymentTable;
  analytics_ticks: AnalyticsTickTable;
  analytics_usage_hourly: AnalyticsUsageHourlyTable;
  analytics_usage_daily: AnalyticsUsageDailyTable;
  analytics_node_hourly: AnalyticsNodeHourlyTable;
  analytics_user_activity: AnalyticsUserActivityTable;
  analytics_plan_spans: AnalyticsPlanSpanTable;
  analytics_exports: AnalyticsExportTable;
  edge_site_traffic: EdgeSiteTrafficTable;
  edge_traffic_ticks: { tick_id: string };
  edge_certificates: EdgeCertificateTable;
  edge_acme_challenges: EdgeAcmeChallengeTable;
  edge_acme_challenge_acks: EdgeAcmeChallengeAckTable;
  notifications: NotificationTable;
  notification_deliveries: NotificationDeliveryTable;
}

/** The audit worker's tree over <NS>_AUDIT (workers/audit/store.ts). One row per audit stream. */
export interface AuditStateTable {
  stream: string;
  tree_size: number;
  /** The compact range: 32-byte roots of the perfect subtrees covering [0, tree_size), largest first. */
  frontier: Buffer;
  updated_at: ColumnType<Date, Date | string | undefined, Date | string>;
}

export interface AuditLeafTable {
  /** Leaf i is the audit stream's message i + 1. */
  leaf_index: number;
  /** SHA-256(0x00 ‖ leaf input), replay/audit/leaf.ts. */
  hash: Buffer;
}

/** Perfect subtrees of level ≥ 8: leaves [idx·2^level, (idx+1)·2^level). */
export interface AuditNodeTable {
  level: number;
  idx: number;
  hash: Buffer;
}

/** Event ids (ce-id, and a commit's inner event ids) → the leaf of their message. */
export interface AuditEventTable {
  event_id: string;
  leaf_index: number;
}

export interface AuditCheckpointTable {
  tree_size: number;
  root: Buffer;
  /** The signed note, as published and written to the checkpoint directory. */
  note: string;
  created_at: ColumnType<Date, Date | undefined, never>;
}

/** Messenger devices and their public keys (projectors/messaging/devices.projection.ts). The gateway reads it too. */
export interface DeviceTable {
  id: string;
  user_id: string;
  name: string;
  identity_key: string;
  signed_prekey_id: number;
  signed_prekey: string;
  signed_prekey_signature: string;
  registered_at: Date;
  /** Set when the device was unlinked; active devices have none. */
  removed_at: Date | null;
  last_seq: number;
}

/** Unclaimed one-time prekeys: command side, consumed by claims (producers/messaging/one-time-prekeys.ts). */
export interface OneTimePreKeyTable {
  device_id: string;
  key_id: number;
  public_key: string;
}

/** `user_id` has `contact_id` in their contacts. */
export interface ContactTable {
  user_id: string;
  contact_id: string;
  added_at: Date;
}

/** `user_id` blocked `blocked_id`. */
export interface BlockTable {
  user_id: string;
  blocked_id: string;
  blocked_at: Date;
}

export interface ChatGroupTable {
  id: string;
  name: string;
  created_by: string;
  created_at: Date;
  last_seq: number;
}

export interface GroupMemberTable {
  group_id: string;
  user_id: string;
  added_at: Date;
}

/** Proxy nodes (projectors/fleet): description, health, and the template they should and do run. */
export interface FleetNodeTable {
  id: string;
  address: string;
  region: string;
  country: string;
  city: string;
  labels: string[];
  roles: string[];
  health: string;
  health_reason: string | null;
  drained: boolean;
  retired: boolean;
  nats_user: string | null;
  /** bcrypt, for `relaygrid nats-config`; the password itself went to the agent only. */
  nats_password_hash: string | null;
  /** The template its latest rollout wave (or roll-back) told it to run. */
  desired_template: string | null;
  desired_rollout: string | null;
  applied_template: string | null;
  applied_version: string | null;
  applied_at: Date | null;
  /** The core's error text of the last rejected configuration, cleared by the next applied one. */
  last_error: string | null;
  registered_at: Date;
  last_seq: number;
}

/** Inbound profiles, public settings only: secrets are never in a read model. */
export interface FleetProfileTable {
  id: string;
  kind: string;
  port: number;
  labels: string[];
  settings: ColumnType<Record<string, unknown>, string, string>;
  removed: boolean;
  created_at: Date;
  last_seq: number;
}

export interface FleetRolloutTable {
  id: string;
  status: string;
  reason: string;
  planned_by: string;
  planned_at: Date;
  wave: number;
  waves: ColumnType<string[][], string, string>;
  targets: ColumnType<{ nodeId: string; template: string; previousTemplate: string | null }[], string, string>;
  max_rejections: number;
  applied: number;
  rejected: number;
  /** Why it halted, who paused, aborted or rolled it back. */
  status_reason: string | null;
  updated_at: Date;
  last_seq: number;
}

export interface FleetRolloutNodeTable {
  rollout_id: string;
  node_id: string;
  outcome: string;
  error: string | null;
  reported_at: Date;
}

export interface UsageTickTable {
  tick_id: string;
  node_id: string;
  interval_end: Date;
}

/** Bytes per user and hour, summed over nodes. int8 reads as a number (schema/db.ts refuses beyond 2^53: 9 PB per hour). */
export interface UsageUserHourlyTable {
  user_id: string;
  hour: Date;
  uplink: ColumnType<number, bigint | string | number, bigint | string | number>;
  downlink: ColumnType<number, bigint | string | number, bigint | string | number>;
}

export interface UsageNodeHourlyTable {
  node_id: string;
  hour: Date;
  uplink: ColumnType<number, bigint | string | number, bigint | string | number>;
  downlink: ColumnType<number, bigint | string | number, bigint | string | number>;
}

/**
 * 64-bit byte and money columns. Read them `::text` (producers/plans/catalogue.ts,
 * subscriptions.ts): schema/db.ts refuses int8 values past 2^53 rather than round them.
 */
type Int8 = ColumnType<number, bigint | string | number, bigint | string | number>;

/** The plan catalogue (projectors/plans). */
export interface PlanTable {
  id: string;
  name: string;
  /** Null: unlimited. */
  allowance_bytes: Int8 | null;
  reset_strategy: string;
  validity_kind: string;
  validity_days: number | null;
  on_hold_timeout_days: number | null;
  ip_limit: number | null;
  node_labels: string[];
  inbound_kinds: string[];
  price_minor: Int8;
  /** Soft overage: per GiB above the allowance; null: not charged. */
  overage_price_minor: Int8 | null;
  currency: string;
  next_plan_id: string | null;
  overage: string;
  retired: boolean;
  created_at: Date;
  updated_at: Date;
  last_seq: number;
}

/**
 * Each user's current subscription, with the terms of its current period
 * (a plan's change shows here at the next period). Who has access:
 * `status = 'active'` (a soft-overage plan stays active when its allowance is
 * spent; index subscriptions_status). `used_*` belong to metering (wave 2): the
 * plans projector only sets them to 0 when a new period or subscription starts.
 */
export interface SubscriptionTable {
  user_id: string;
  plan_id: string;
  /** active, limited, expired, on_hold or disabled. */
  status: string;
  /** The cause of the last status change, e.g. operator, next_plan, period_rolled, grant:<id>, allowance_spent. */
  status_cause: string;
  /** on_hold, running or expired: the status without a suspension laid over it. */
  phase: string;
  limited: boolean;
  disabled_reason: string | null;
  /** Billing: the unpaid renewal invoice and the end of its grace period (status past_due). */
  past_due_invoice_id: string | null;
  past_due_until: Date | null;
  starts_at: Date;
  period_start: Date | null;
  period_end: Date | null;
  time_zone: string;
  /** The plan's allowance for this period, grants apart; null = unlimited. */
  allowance_bytes: Int8 | null;
  used_uplink_bytes: Int8;
  used_downlink_bytes: Int8;
  reset_strategy: string;
  ip_limit: number | null;
  node_labels: string[];
  inbound_kinds: string[];
  overage: string;
  expires_at: Date | null;
  on_hold_until: Date | null;
  next_plan_id: string | null;
  /** When the scheduler must act next (roll, expire or end the hold); null: nothing scheduled. */
  next_due_at: Date | null;
  updated_at: Date;
  last_seq: number;
}

/** Top-ups, usable across periods until they expire; `used_bytes` is metering's. */
export interface SubscriptionGrantTable {
  user_id: string;
  grant_id: string;
  bytes: Int8;
  used_bytes: Int8;
  expires_at: Date | null;
  granted_by: string;
  granted_at: Date;
}

/** One proxied connection (projectors/usage/connections.projection.ts). The client IP is sealed with the user's key, never plain. */
export interface ConnectionHistoryTable {
  connection_id: string;
  user_id: string;
  node_id: string;
  inbound_tag: string | null;
  port: number | null;
  client_ip_sealed: Buffer | null;
  opened_at: Date;
  /** Null while open (or when the agent stopped before it saw the close). */
  closed_at: Date | null;
  uplink: Int8;
  downlink: Int8;
  last_seq: number;
}

/** Every period a subscription ran, with its allowance (projectors/plans/metering-periods.ts): what a tick is attributed by. */
export interface SubscriptionPeriodTable {
  user_id: string;
  period_start: Date;
  /** The scheduled boundary, where the next period of the same subscription starts; null: strategy none. */
  period_end: Date | null;
  /** Where the subscription stopped in this period (its expiry, a new subscription, a hold): no period of it follows. */
  ended_at: Date | null;
  allowance_bytes: Int8 | null;
}

/** Threshold and expiry notices recorded (`usage:<periodStart>:<percent>`, `expiry:<expiresAt>:<daysLeft>`): the metering worker's "done". */
export interface SubscriptionNoticeTable {
  user_id: string;
  notice: string;
  noted_at: Date;
}

/** The metering projector's tick ledger (projectors/plans/metering.projection.ts): a tick id counts once. */
export interface MeteringTickTable {
  tick_id: string;
}

/** Usage of one user in one period, by the tick's interval end (docs/metering.md). */
export interface SubscriptionUsageTable {
  user_id: string;
  period_start: Date;
  /** The period's allowance as known at its last tick (null: unlimited, or not known yet). */
  allowance_bytes: Int8 | null;
  uplink_bytes: Int8;
  downlink_bytes: Int8;
  /** Of the period's usage, what grants covered (past the allowance). */
  grant_bytes: Int8;
  /** The latest interval end counted. */
  last_at: Date;
}

/** Traffic of a user whose period is not known yet (on hold, or the subscription not projected yet). */
export interface MeteringPendingTable {
  user_id: string;
  tick_id: string;
  at: Date;
  uplink_bytes: Int8;
  downlink_bytes: Int8;
}

/** Bytes drawn from each grant (a grant outlives periods until it expires). */
export interface SubscriptionGrantUsageTable {
  user_id: string;
  grant_id: string;
  granted_at: Date;
  used_bytes: Int8;
}

/** An integrator's webhook endpoint (docs/billing-webhooks.md); its signing secret is only in the log, sealed. */
export interface WebhookEndpointTable {
  id: string;
  url: string;
  event_types: string[];
  description: string | null;
  /** active, disabled (its receiver answered 410 Gone) or deleted. */
  status: string;
  disabled_reason: string | null;
  /** 1, +1 per rotation: a signer's cached secret of another version is stale. */
  secret_version: number;
  created_at: Date;
  secret_rotated_at: Date | null;
  disabled_at: Date | null;
  deleted_at: Date | null;
  last_seq: number;
}

/** The webhook outbox: one delivery per (cause event, endpoint), keyed by the webhook id derived from both. */
export interface WebhookDeliveryTable {
  webhook_id: string;
  endpoint_id: string;
  /** The webhook type (`subscription.limited`). */
  event_type: string;
  cause_event_id: string;
  /** The catalogue key of the cause (`plans.SubscriptionLimited`). */
  cause_type: string;
  cause_stream: string;
  cause_seq: number;
  /** The exact body every attempt sends (and signs). */
  payload: string;
  /** pending, delivered, failed (final) or cancelled (the endpoint was disabled or deleted first). */
  status: string;
  attempts: ColumnType<number, number | undefined, number>;
  /** When the next attempt is due; null once final. */
  next_attempt_at: Date | null;
  last_status_code: number | null;
  final_reason: string | null;
  created_at: Date;
  finished_at: Date | null;
}

/** One attempt of a delivery: started before the request goes out, finished when its answer (or failure) is known. */
export interface WebhookAttemptTable {
  webhook_id: string;
  attempt: number;
  started_at: Date;
  finished_at: Date | null;
  status_code: number | null;
  latency_ms: number | null;
  /** timeout, connection, target_not_allowed, http_<status>; null for a 2xx. */
  error: string | null;
}

/** A priced line as the read models keep it (jsonb): amounts in minor units. */
export interface LineJson {
  kind: string;
  description: string;
  quantity: number;
  unitAmountMinor: number;
  amountMinor: number;
}

/** Priced amounts shared by orders and invoices: integer minor units of `currency`. */
interface PricedColumns {
  currency: string;
  lines: LineJson[];
  subtotal_minor: number;
  tax_rate_bp: number;
  tax_country: string | null;
  tax_minor: number;
  total_minor: number;
}

/** A billing order (projectors/billing/orders.projection.ts). */
export interface OrderTable extends PricedColumns {
  id: string;
  user_id: string;
  kind: string;
  plan_id: string;
  months: number;
  coupon: string | null;
  provider: string;
  payment_method_id: string | null;
  /** pending, paid, fulfilled, failed, cancelled, refunded (order.decider.ts). */
  status: string;
  provider_ref: string | null;
  instructions: string | null;
  attempts: number;
  failure_reason: string | null;
  next_attempt_at: Date | null;
  invoice_id: string | null;
  period_start: Date | null;
  period_end: Date | null;
  refunded_minor: number;
  placed_at: Date;
  paid_at: Date | null;
  fulfilled_at: Date | null;
  cancelled_at: Date | null;
  updated_at: Date;
  last_seq: number;
}

/** An invoice (projectors/billing/invoices.projection.ts). */
export interface InvoiceTable extends PricedColumns {
  id: string;
  order_id: string;
  user_id: string;
  number: string | null;
  series: string | null;
  sequence: number | null;
  status: string;
  credited_minor: number;
  period_start: Date;
  period_end: Date;
  time_zone: string;
  created_at: Date;
  finalized_at: Date | null;
  paid_at: Date | null;
  voided_at: Date | null;
  last_seq: number;
}

export interface CreditNoteTable {
  id: string;
  invoice_id: string;
  user_id: string;
  number: string;
  series: string;
  sequence: number;
  amount_minor: number;
  currency: string;
  reason: string;
  issued_at: Date;
}
/** Discount coupons (projectors/billing/coupons.projection.ts); `uses`: redemptions held, released ones not counted. */
export interface CouponTable {
  /** Upper-case, as customers' input is normalized. */
  code: string;
  /** percent or fixed. */
  kind: string;
  percent_off: number | null;
  amount_off_minor: Int8 | null;
  currency: string | null;
  expires_at: Date | null;
  /** Null: unlimited. */
  max_uses: number | null;
  uses: number;
  disabled_at: Date | null;
  created_at: Date;
  last_seq: number;
}

/** A user's saved payment method (docs/billing-payment-methods.md). No token: only the log has it, and only resolve() reads it. */
export interface PaymentMethodTable {
  id: string;
  user_id: string;
  provider: string;
  /** JSON {brand, last4, expMonth, expYear} sealed under the person's key (producers/billing/payment-method-details.ts), with a fresh nonce at each projection (a rebuild: the same details, other bytes); null when projected after they were forgotten. */
  details_sealed: Buffer | null;
  is_default: boolean;
  added_at: Date;
  /** Set when removed: the row stays (a rebuild gives the same table), lists leave it out. */
  removed_at: Date | null;
  last_seq: number;
}

/** Edge sites (projectors/edge/sites.projection.ts): what the sites API lists and what nodes are asked to serve. Deleted rows stay, marked. */
export interface EdgeSiteTable {
  id: string;
  owner_id: string;
  /** Lower-case punycode, as validated; also in settings, here for lookups. */
  domain: string;
  aliases: string[];
  /** Empty: every edge node serves the site. */
  node_labels: string[];
  settings: ColumnType<SiteSettings, string, string>;
  blocked: boolean;
  created_at: Date;
  updated_at: Date;
  deleted_at: Date | null;
  /** The site's version (SiteSpec.version): the stream sequence of its last event. */
  last_seq: number;
  /** SiteSpec.cachePurge: the last whole-site purge's sequence and the URIs purged since. */
  cache_purge: ColumnType<CachePurge, string | undefined, string>;
}

/** What each edge node reports for each site it serves (written by the agent wiring, read by GET /v1/sites/:id/deployments). */
export interface EdgeSiteDeploymentTable {
  site_id: string;
  node_id: string;
  /** The site version the node serves; null when it never applied one. */
  applied_version: number | null;
  /** applied, rejected or pending. */
  status: string;
  /** The edge's own error text for a rejected version. */
  error: string | null;
  updated_at: Date;
}

type Bigint = ColumnType<string, bigint | string | number, bigint | string | number>;

export interface AnalyticsTickTable {
  tick_id: string;
}

/** Bytes per user, node and hour (the hour a tick's interval ended in). */
export interface AnalyticsUsageHourlyTable {
  user_id: string;
  hour: Date;
  node_id: string;
  uplink: Bigint;
  downlink: Bigint;
}

/** The same per UTC day (`YYYY-MM-DD`). */
export interface AnalyticsUsageDailyTable {
  user_id: string;
  day: ColumnType<string, string, string>;
  node_id: string;
  uplink: Bigint;
  downlink: Bigint;
}

export interface AnalyticsNodeHourlyTable {
  node_id: string;
  hour: Date;
  uplink: Bigint;
  downlink: Bigint;
}

/** When each user's traffic was first and last seen (interval ends). */
export interface AnalyticsUserActivityTable {
  user_id: string;
  first_at: Date;
  last_at: Date;
}

/** One subscription of a user, from its start to its end (null while it runs). */
export interface AnalyticsPlanSpanTable {
  user_id: string;
  started_at: Date;
  plan_id: string;
  /** SubscriptionStarted's cause: operator, next_plan, order. */
  cause: string;
  ended_at: Date | null;
  /** replaced (another subscription started), expired, or null while it runs. */
  end_cause: string | null;
}

export interface AnalyticsExportTable {
  id: string;
  owner_id: string;
  /** Whose rows: one user, or null for the fleet (analysts and operators). */
  scope_user_id: string | null;
  dataset: string;
  format: string;
  range_from: Date;
  range_to: Date;
  /** Personal fields included: only when the rows are the caller's own. */
  personal: boolean;
  /** queued, running, done, failed. */
  status: string;
  rows_total: Bigint | null;
  rows_done: ColumnType<string, bigint | string | number | undefined, bigint | string | number>;
  bytes: Bigint | null;
  error: string | null;
  created_at: Date;
  finished_at: Date | null;
}
/** Per site, hour (UTC, the tick's interval end) and node: the sum of its traffic ticks (projectors/edge/traffic.projection.ts). */
export type EdgeSiteTrafficTable = { site_id: string; hour: Date; node_id: string } & Record<TrafficColumn, Int8>;

/** The columns of usage.SiteTrafficTicked's counts (producers/usage/site-traffic-ticks.ts TRAFFIC_COUNTS, snake_cased). */
export type TrafficColumn =
  | 'requests_1xx' | 'requests_2xx' | 'requests_3xx' | 'requests_4xx' | 'requests_5xx'
  | 'sent_bytes' | 'received_bytes' | 'cache_hits' | 'cache_misses' | 'cache_bypasses'
  | 'waf_blocks' | 'upstream_requests' | 'upstream_errors' | 'upstream_millis';
/** Each site's ACME certificate state (projectors/edge/certificates.projection.ts): names and dates, never key material. */
export interface EdgeCertificateTable {
  site_id: string;
  /** What the last order asked for (the certificate's names once one is issued), the site's domain first. */
  domains: string[];
  /** The current certificate; null while the site has none. */
  serial: string | null;
  not_before: Date | null;
  not_after: Date | null;
  renew_at: Date | null;
  /** Failed orders in a row since the last certificate. */
  failures: number;
  retry_at: Date | null;
  last_error: string | null;
  updated_at: Date;
  last_seq: number;
}

/** An HTTP-01 answer being validated now (producers/edge/acme/fleet-challenge-publisher.ts). */
export interface EdgeAcmeChallengeTable {
  token: string;
  site_id: string;
  key_authorization: string;
  created_at: Date;
}

/** A node's word that it serves a token (its edge-report). */
export interface EdgeAcmeChallengeAckTable {
  token: string;
  node_id: string;
  acked_at: Date;
}
/** A notification (workers/notifications/outbox.ts): the outbox row and the in-app entry. */
export interface NotificationTable {
  /** Derived from the cause: event id, kind and recipient (producers/notifications/notification-id.ts). */
  id: string;
  user_id: string;
  /** What it tells (`usage.threshold`), and its settings category (`usage`). */
  kind: string;
  category: string;
  cause_event_id: string;
  cause_type: string;
  cause_stream: string;
  cause_seq: number;
  /** JSON {subject, text, html} sealed under the person's key; null once dropped (forgotten). */
  message_sealed: Buffer | null;
  /** The address the cause names (a verification goes to the address being verified); null: the account's address at send time. */
  recipient_sealed: Buffer | null;
  /** What to attach, rendered at send time (`invoice:<id>`). */
  attachment: string | null;
  created_at: Date;
  read_at: Date | null;
}

/** The sent-ledger: one row per notification and channel. */
export interface NotificationDeliveryTable {
  notification_id: string;
  /** email (push later). */
  channel: string;
  /** pending, sent, failed (final), suppressed (the user turned it off), dropped (the person was forgotten). */
  status: string;
  attempts: ColumnType<number, number | undefined, number>;
  /** When the next attempt is due; null once final. */
  next_attempt_at: Date | null;
  last_error: string | null;
  final_reason: string | null;
  created_at: Date;
  finished_at: Date | null;
}
