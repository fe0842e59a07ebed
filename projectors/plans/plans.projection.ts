/**
 * The plans context's read models, from one pass over `<ns>.evt.plans.>`:
 * - `plans`: the catalogue, retired plans included (flagged);
 * - `subscriptions`: each user's current subscription with the terms of its
 *   current period, its status, and `next_due_at` for the scheduler;
 * - `subscription_grants`: top-ups.
 *
 * Byte counters are exact: they travel as decimal strings into `bigint[]`
 * parameters and are read back `::text`. The `used_*` columns are metering's
 * (another projector, another transaction): this one never writes them but to
 * zero them when a period or a subscription starts, in their own statement.
 */
import { sql, type Transaction } from 'kysely';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { GrantAddedV1, PlanCreatedV2 } from '../../contracts/catalogue.generated.js';
import type { Database, PlanTable, SubscriptionTable } from '../../schema/database.js';
import { nextDueAt, statusOf } from '../../producers/plans/subscription.decider.js';
import type { Projection } from '../runtime/projection.js';
import { foldRows, type RowStep } from '../runtime/batch-fold.js';
import { tokenArrayColumn, upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';
import { recordMeteringPlans } from './metering-periods.js';

type Bytes = string | null;
type PlanRow = Omit<PlanTable, 'allowance_bytes' | 'price_minor' | 'overage_price_minor'> & { allowance_bytes: Bytes; price_minor: string; overage_price_minor: string | null };
type SubscriptionRow = Omit<SubscriptionTable, 'allowance_bytes' | 'used_uplink_bytes' | 'used_downlink_bytes'> & { allowance_bytes: Bytes };

const of = <Row>(name: keyof Row & string, arrayType: string): UnnestColumn<Row> => ({ name, arrayType, value: (r) => r[name] });
const texts = <Row>(...names: (keyof Row & string)[]) => names.map((n) => of<Row>(n, 'text[]'));
const times = <Row>(...names: (keyof Row & string)[]) => names.map((n) => of<Row>(n, 'timestamptz[]'));

const PLAN_COLUMNS: UnnestColumn<PlanRow>[] = [
  ...texts<PlanRow>('id', 'name', 'reset_strategy', 'validity_kind', 'currency', 'next_plan_id', 'overage'),
  of<PlanRow>('allowance_bytes', 'bigint[]'),
  of<PlanRow>('price_minor', 'bigint[]'),
  of<PlanRow>('overage_price_minor', 'bigint[]'),
  ...(['validity_days', 'on_hold_timeout_days', 'ip_limit'] as const).map((c) => of<PlanRow>(c, 'integer[]')),
  tokenArrayColumn<PlanRow>('node_labels', (r) => r.node_labels),
  tokenArrayColumn<PlanRow>('inbound_kinds', (r) => r.inbound_kinds),
  of<PlanRow>('retired', 'boolean[]'),
  ...times<PlanRow>('created_at', 'updated_at'),
  of<PlanRow>('last_seq', 'bigint[]'),
];

const SUBSCRIPTION_COLUMNS: UnnestColumn<SubscriptionRow>[] = [
  ...texts<SubscriptionRow>('user_id', 'plan_id', 'status', 'status_cause', 'phase', 'disabled_reason', 'past_due_invoice_id', 'time_zone', 'reset_strategy', 'overage', 'next_plan_id'),
  of<SubscriptionRow>('limited', 'boolean[]'),
  of<SubscriptionRow>('allowance_bytes', 'bigint[]'),
  of<SubscriptionRow>('ip_limit', 'integer[]'),
  tokenArrayColumn<SubscriptionRow>('node_labels', (r) => r.node_labels),
  tokenArrayColumn<SubscriptionRow>('inbound_kinds', (r) => r.inbound_kinds),
  ...times<SubscriptionRow>('starts_at', 'period_start', 'period_end', 'expires_at', 'on_hold_until', 'past_due_until', 'next_due_at', 'updated_at'),
  of<SubscriptionRow>('last_seq', 'bigint[]'),
];

/** The 64-bit counters among a table's columns, selected as text. */
const BYTE_COLUMNS = new Set(['allowance_bytes', 'price_minor', 'overage_price_minor']);

/** Rows of the given ids, exact: int8 byte columns come back as text (schema/db.ts would refuse them past 2^53). */
function loadRows<Row>(trx: Transaction<Database>, table: 'plans' | 'subscriptions', key: string, columns: readonly UnnestColumn<Row>[]) {
  return async (ids: string[]): Promise<[string, Row][]> => {
    const list = sql.join(columns.map((c) => (BYTE_COLUMNS.has(c.name) ? sql`${sql.ref(c.name)}::text as ${sql.ref(c.name)}` : sql.ref(c.name))));
    const { rows } = await sql<Row & Record<string, string>>`select ${list} from ${sql.table(table)} where ${sql.ref(key)} = any(${ids}::text[])`.execute(trx);
    return rows.map((r) => [r[key]!, r]);
  };
}

const bytes = (value: bigint | null): Bytes => (value === null ? null : value.toString());

function planRow(d: Omit<PlanCreatedV2, 'createdAt'>, at: Date, seq: number, createdAt: Date): PlanRow {
  return {
    id: d.planId,
    name: d.name,
    allowance_bytes: bytes(d.allowanceBytes),
    reset_strategy: d.resetStrategy,
    validity_kind: d.validityKind,
    validity_days: d.validityDays,
    on_hold_timeout_days: d.onHoldTimeoutDays,
    ip_limit: d.ipLimit,
    node_labels: d.nodeLabels,
    inbound_kinds: d.inboundKinds,
    price_minor: d.priceMinor.toString(),
    overage_price_minor: d.overagePriceMinor?.toString() ?? null,
    currency: d.currency,
    next_plan_id: d.nextPlanId,
    overage: d.overage,
    retired: false,
    created_at: createdAt,
    updated_at: at,
    last_seq: seq,
  };
}

function planStep(event: StoredEvent): RowStep<PlanRow> {
  switch (event.type) {
    case 'plans.PlanCreated':
      return { id: event.data.planId, create: planRow(event.data, event.data.createdAt, event.seq, event.data.createdAt) };
    case 'plans.PlanUpdated': {
      const d = event.data;
      return { id: d.planId, update: (row) => ({ ...planRow(d, d.updatedAt, event.seq, row.created_at), retired: row.retired }) };
    }
    case 'plans.PlanRetired':
      return { id: event.data.planId, update: (row) => ({ ...row, retired: true, updated_at: event.data.retiredAt, last_seq: event.seq }) };
    default:
      return undefined;
  }
}

interface PeriodFields {
  allowanceBytes: bigint | null;
  resetStrategy: string;
  ipLimit: number | null;
  nodeLabels: string[];
  inboundKinds: string[];
  overage: string;
}

const termColumns = (d: PeriodFields) => ({
  allowance_bytes: bytes(d.allowanceBytes),
  reset_strategy: d.resetStrategy,
  ip_limit: d.ipLimit,
  node_labels: d.nodeLabels,
  inbound_kinds: d.inboundKinds,
  overage: d.overage,
});

/** What one event does to a subscription row; `fresh` collects users whose usage starts from zero. */
function subscriptionStep(event: StoredEvent, fresh: Set<string>): RowStep<SubscriptionRow> {
  const change = (userId: string, update: (row: SubscriptionRow) => Partial<SubscriptionRow>): RowStep<SubscriptionRow> => ({
    id: userId,
    update: (row) => ({ ...row, ...update(row), updated_at: event.time, last_seq: event.seq }),
  });
  switch (event.type) {
    case 'plans.SubscriptionStarted': {
      const d = event.data;
      fresh.add(d.userId);
      const row = started(event.seq, event.time, d);
      // A move to the next plan keeps a suspension (subscription.decider.ts); it always follows the expiry of a row that exists.
      return d.cause === 'next_plan' ? { id: d.userId, update: (before) => ({ ...row, disabled_reason: before.disabled_reason }) } : { id: d.userId, create: row };
    }
    case 'plans.PeriodRolled': {
      const d = event.data;
      fresh.add(d.userId);
      return change(d.userId, () => ({ period_start: d.periodStart, period_end: d.periodEnd, time_zone: d.timeZone, ...termColumns(d), limited: false, status_cause: 'period_rolled' }));
    }
    case 'plans.SubscriptionActivated': {
      const d = event.data;
      fresh.add(d.userId);
      return change(d.userId, () => ({ phase: 'running', period_start: d.periodStart, period_end: d.periodEnd, time_zone: d.timeZone, expires_at: d.expiresAt, on_hold_until: null, status_cause: d.cause }));
    }
    case 'plans.SubscriptionLimited':
      return change(event.data.userId, () => ({ limited: true, status_cause: event.data.cause }));
    case 'plans.SubscriptionReactivated':
      return change(event.data.userId, () => ({ limited: false, status_cause: event.data.cause }));
    case 'plans.SubscriptionExpired':
      return change(event.data.userId, () => ({ phase: 'expired', limited: false, status_cause: event.data.cause }));
    case 'plans.SubscriptionDisabled':
      return change(event.data.userId, () => ({ disabled_reason: event.data.reason, status_cause: 'disabled' }));
    case 'plans.SubscriptionEnabled':
      return change(event.data.userId, () => ({ disabled_reason: null, status_cause: 'enabled' }));
    case 'plans.SubscriptionPastDue':
      return change(event.data.userId, () => ({ past_due_invoice_id: event.data.invoiceId, past_due_until: event.data.graceUntil, status_cause: 'payment_failed' }));
    case 'plans.SubscriptionPastDueSettled':
      return change(event.data.userId, () => ({ past_due_invoice_id: null, past_due_until: null, status_cause: 'payment_received' }));
    case 'plans.SubscriptionExtended':
      return change(event.data.userId, () => ({ expires_at: event.data.expiresAt, status_cause: 'extended' }));
    default:
      return undefined;
  }
}

function started(seq: number, at: Date, d: Extract<StoredEvent, { type: 'plans.SubscriptionStarted' }>['data']): SubscriptionRow {
  return {
    user_id: d.userId,
    plan_id: d.planId,
    status: d.status,
    status_cause: d.cause,
    phase: d.status === 'on_hold' ? 'on_hold' : 'running',
    limited: false,
    disabled_reason: null,
    past_due_invoice_id: null,
    past_due_until: null,
    starts_at: d.startsAt,
    period_start: d.periodStart,
    period_end: d.periodEnd,
    time_zone: d.timeZone,
    ...termColumns(d),
    expires_at: d.expiresAt,
    on_hold_until: d.onHoldUntil,
    next_plan_id: d.nextPlanId,
    next_due_at: null,
    updated_at: at,
    last_seq: seq,
  };
}

/** status and next_due_at follow from the rest of the row, the way the decider derives them. */
function derived(row: SubscriptionRow): SubscriptionRow {
  const phase = row.phase as 'on_hold' | 'running' | 'expired';
  return {
    ...row,
    status: statusOf({ phase, limited: row.limited, disabled: row.disabled_reason === null ? null : { reason: row.disabled_reason }, pastDue: row.past_due_invoice_id }) ?? row.status,
    next_due_at: nextDueAt({ phase, onHoldUntil: row.on_hold_until, expiresAt: row.expires_at, periodEnd: row.period_end, pastDue: row.past_due_invoice_id !== null }),
  };
}

/** Grants as the batch leaves them: a new subscription ends the old one's grants, so they are deleted before the batch's later grants go in. */
async function writeGrants(trx: Transaction<Database>, events: readonly StoredEvent[]): Promise<void> {
  const restarted = new Set<string>();
  let grants: GrantAddedV1[] = [];
  for (const e of events) {
    if (e.type === 'plans.GrantAdded') grants.push(e.data);
    else if (e.type === 'plans.SubscriptionStarted') {
      restarted.add(e.data.userId);
      grants = grants.filter((g) => g.userId !== e.data.userId);
    }
  }
  if (restarted.size > 0) await sql`delete from subscription_grants where user_id = any(${[...restarted]}::text[])`.execute(trx);
  const columns: UnnestColumn<GrantAddedV1>[] = [
    { name: 'user_id', arrayType: 'text[]', value: (g) => g.userId },
    { name: 'grant_id', arrayType: 'text[]', value: (g) => g.grantId },
    { name: 'bytes', arrayType: 'bigint[]', value: (g) => g.bytes.toString() },
    { name: 'expires_at', arrayType: 'timestamptz[]', value: (g) => g.expiresAt },
    { name: 'granted_by', arrayType: 'text[]', value: (g) => g.by },
    { name: 'granted_at', arrayType: 'timestamptz[]', value: (g) => g.grantedAt },
  ];
  await upsertUnnest(trx, 'subscription_grants', columns, grants, ['user_id', 'grant_id'], 'nothing');
}

export const plansProjection: Projection = {
  name: 'plans',
  context: 'plans',
  tables: ['plans', 'subscriptions', 'subscription_grants', 'subscription_periods', 'subscription_notices'],
  filter: (names) => names.contextSubjects('plans'),
  async apply(trx, events) {
    const plans = await foldRows(events, planStep, loadRows(trx, 'plans', 'id', PLAN_COLUMNS));
    await upsertUnnest(trx, 'plans', PLAN_COLUMNS, plans, ['id']);
    const fresh = new Set<string>();
    const subscriptions = await foldRows(events, (e) => subscriptionStep(e, fresh), loadRows(trx, 'subscriptions', 'user_id', SUBSCRIPTION_COLUMNS));
    await upsertUnnest(trx, 'subscriptions', SUBSCRIPTION_COLUMNS, subscriptions.map(derived), ['user_id']);
    if (fresh.size > 0) await sql`update subscriptions set used_uplink_bytes = 0, used_downlink_bytes = 0 where user_id = any(${[...fresh]}::text[])`.execute(trx);
    await writeGrants(trx, events);
    await recordMeteringPlans(trx, events);
  },
};
