/**
 * Users' subscriptions: operators grant plans and top-ups and suspend; the
 * scheduler rolls periods, expires and ends holds (advance); metering will mark
 * limited, reactivate and report first traffic. Every decision reads the plan
 * and the user's time zone from the log, so it never acts on a read model
 * that is behind.
 */
import { randomUUID } from 'node:crypto';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import { userDecider } from '../identity/user.decider.js';
import type { Written } from '../messaging/messaging-deps.js';
import type { Catalogue } from './catalogue.js';
import { currentUsage } from './metering-queries.js';
import { checkPlanId, parseBytes } from './model.js';
import type { PlansDeps } from './plans-deps.js';
import { dueAt, subscriptionDecider, type SubscriptionCommand, type SubscriptionState } from './subscription.decider.js';

const SYSTEM: Actor = { actor: 'system:plans' };
const BILLING: Actor = { actor: 'system:billing' };
const GRANT_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** What `GET /v1/account/subscription` answers; bytes as decimal strings. */
export interface SubscriptionView {
  planId: string;
  status: string;
  periodStart: string | null;
  periodEnd: string | null;
  usedBytes: string;
  /** This period's allowance plus unexpired grants left; null = unlimited. */
  allowanceBytes: string | null;
  expiresAt: string | null;
  timeZone: string;
  ipLimit: number | null;
}

function time(value: unknown, field: string, code: string): Date {
  const date = typeof value === 'string' ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime())) throw new DomainError(code, `${field}: must be an RFC 3339 date-time`, { field });
  return date;
}

export class PlanSubscriptions {
  constructor(
    private readonly d: PlansDeps,
    private readonly catalogue: Catalogue,
  ) {}

  /** The user's zone from the identity log: the zone a period starts in. */
  async timeZoneOf(userId: string): Promise<string> {
    const { state } = await this.d.handler.load(userDecider, this.d.handler.store.names.aggregate('identity', 'user', userId));
    if (!state.userId) throw new DomainError('user_not_found', `no user ${userId}`);
    if (state.status === 'forgotten') throw new DomainError('user_forgotten', 'this account was deleted');
    return state.timeZone;
  }

  private decide(userId: string, command: SubscriptionCommand, actor: Actor) {
    return this.d.decide(subscriptionDecider, 'subscription', userId, command, actor);
  }

  /** An operator grants a plan; it replaces the user's current subscription, if any. */
  /** An operator grants a plan; the same `requestId` again (a retry) decides nothing. */
  async start(userId: string, input: { planId?: unknown; startsAt?: unknown; requestId?: unknown }, actor: Actor, now = new Date()): Promise<Written> {
    const planId = checkPlanId(input.planId);
    const requestId = input.requestId ?? null;
    if (requestId !== null && (typeof requestId !== 'string' || !GRANT_ID.test(requestId))) {
      throw new DomainError('invalid_subscription', "requestId: must be 1-64 of A-Z, a-z, 0-9, '_' or '-'", { field: 'requestId' });
    }
    const startsAt = input.startsAt === undefined ? now : time(input.startsAt, 'startsAt', 'invalid_subscription');
    const [plan, timeZone] = await Promise.all([this.catalogue.current(planId), this.timeZoneOf(userId)]);
    if (plan.retired) throw new DomainError('plan_retired', `plan ${planId} is retired: it takes no new subscriptions`);
    const { seq } = await this.decide(userId, { type: 'Start', userId, planId, terms: plan.terms, startsAt, timeZone, cause: 'operator', by: actor.actor, at: now, requestId }, actor);
    return { seq };
  }

  /** Extra bytes; idempotent by grantId (minted when absent, so a retry without one adds twice). */
  async grant(userId: string, input: { bytes?: unknown; expiresAt?: unknown; grantId?: unknown }, actor: Actor, now = new Date()): Promise<Written & { grantId: string }> {
    const grantId = input.grantId === undefined ? randomUUID() : input.grantId;
    if (typeof grantId !== 'string' || !GRANT_ID.test(grantId)) throw new DomainError('invalid_grant', "grantId: must be 1-64 of A-Z, a-z, 0-9, '_' or '-'", { field: 'grantId' });
    const bytes = parseBytes(input.bytes, 'bytes', 'invalid_grant');
    const expiresAt = input.expiresAt === undefined || input.expiresAt === null ? null : time(input.expiresAt, 'expiresAt', 'invalid_grant');
    await this.timeZoneOf(userId);
    const { seq } = await this.decide(userId, { type: 'AddGrant', grantId, bytes, expiresAt, by: actor.actor, at: now }, actor);
    return { seq, grantId };
  }

  async disable(userId: string, reason: string, actor: Actor, now = new Date()): Promise<Written> {
    return { seq: (await this.decide(userId, { type: 'Disable', reason, by: actor.actor, at: now }, actor)).seq };
  }

  async enable(userId: string, reason: string, actor: Actor, now = new Date()): Promise<Written> {
    return { seq: (await this.decide(userId, { type: 'Enable', reason, by: actor.actor, at: now }, actor)).seq };
  }

  /** Metering: the period's allowance is spent (idempotent: a second call, or one for another period, records nothing). */
  async markLimited(userId: string, periodStart: Date, usedBytes: bigint, cause: string, now = new Date()): Promise<Written> {
    return { seq: (await this.decide(userId, { type: 'MarkLimited', periodStart, usedBytes, cause, at: now }, SYSTEM)).seq };
  }

  async reactivate(userId: string, periodStart: Date, cause: string, now = new Date()): Promise<Written> {
    return { seq: (await this.decide(userId, { type: 'Reactivate', periodStart, cause, at: now }, SYSTEM)).seq };
  }

  /** Billing: the renewal charge of `invoiceId` failed; access stays until `graceUntil` (idempotent: a second mark keeps the first grace). */
  async markPastDue(userId: string, invoiceId: string, graceUntil: Date, now = new Date()): Promise<Written> {
    return { seq: (await this.decide(userId, { type: 'MarkPastDue', invoiceId, graceUntil, at: now }, BILLING)).seq };
  }

  /** Billing: `invoiceId` was paid; lifts the past-due mark it set (a no-op for any other invoice). */
  async settlePastDue(userId: string, invoiceId: string, now = new Date()): Promise<Written> {
    return { seq: (await this.decide(userId, { type: 'SettlePastDue', invoiceId, at: now }, BILLING)).seq };
  }

  /** Billing: the subscription as the log has it now (what an order is fulfilled against). */
  async current(userId: string): Promise<SubscriptionState> {
    return (await this.d.load(subscriptionDecider, 'subscription', userId)).state;
  }

  /** Billing: a paid order starts `planId` from `startsAt` until `expiresAt` (idempotent by the order: its id is the start's request id). */
  async startForOrder(userId: string, order: { orderId: string; planId: string; startsAt: Date; expiresAt: Date }, now = new Date()): Promise<Written> {
    const [plan, timeZone] = await Promise.all([this.catalogue.current(order.planId), this.timeZoneOf(userId)]);
    const command: SubscriptionCommand = { type: 'Start', userId, planId: order.planId, terms: plan.terms, startsAt: order.startsAt, timeZone, cause: 'order', by: BILLING.actor, at: now, requestId: order.orderId, expiresAt: order.expiresAt };
    return { seq: (await this.decide(userId, command, BILLING)).seq };
  }

  /** Billing: a paid order moves the running plan's expiry (idempotent by the order). */
  async extendForOrder(userId: string, order: { orderId: string; planId: string; expiresAt: Date }, now = new Date()): Promise<Written> {
    return { seq: (await this.decide(userId, { type: 'Extend', ...order, at: now }, BILLING)).seq };
  }

  /** Metering: the user's first traffic starts an on-hold clock (a no-op otherwise). */
  async firstTraffic(userId: string, trafficAt: Date, now = new Date()): Promise<Written> {
    const timeZone = await this.timeZoneOf(userId);
    return { seq: (await this.decide(userId, { type: 'Activate', cause: 'first_traffic', trafficAt, timeZone, at: now }, SYSTEM)).seq };
  }

  /**
   * The scheduler's one command: whatever is due for this user at `now`
   * (end the hold, expire, roll one period), decided on the log's state. Late
   * by several periods, it rolls one per call; the due query finds it again.
   * Returns whether anything was due.
   */
  async advance(userId: string, now = new Date()): Promise<boolean> {
    const { state } = await this.d.load(subscriptionDecider, 'subscription', userId);
    const due = dueAt(state, now);
    if (!due) return false;
    const timeZone = await this.timeZoneOf(userId).catch((err: unknown) => {
      // A forgotten user's periods still end; they run on in the zone they had.
      if (err instanceof DomainError && err.code === 'user_forgotten') return state.timeZone;
      throw err;
    });
    let command: SubscriptionCommand;
    if (due.kind === 'activate') command = { type: 'Activate', cause: 'on_hold_timeout', timeZone, at: now };
    else if (due.kind === 'roll') {
      const plan = await this.catalogue.current(state.planId ?? '');
      command = { type: 'RollPeriod', periodEnd: due.periodEnd, terms: plan.terms, timeZone, at: now };
    } else {
      const nextId = state.nextPlanId;
      const next = nextId ? await this.catalogue.current(nextId).catch(() => null) : null;
      const usable = next && !next.retired ? { planId: nextId!, terms: next.terms } : null;
      command = { type: 'Expire', expiresAt: due.expiresAt, next: usable, ...(nextId && !usable ? { nextCause: next ? 'next_plan_retired' : 'next_plan_missing' } : {}), timeZone, at: now };
    }
    await this.decide(userId, command, SYSTEM);
    return true;
  }

  /** User ids whose next scheduled command is due at `now`, oldest first: the scheduler's due query. */
  async due(now: Date, limit: number): Promise<{ userId: string; dueAt: Date }[]> {
    // A forgotten person's subscription is left as it stands: rolling it on would append periods for nobody, forever.
    const rows = await this.d.db
      .selectFrom('subscriptions')
      .select(['subscriptions.user_id', 'subscriptions.next_due_at'])
      .where('subscriptions.next_due_at', '<=', now)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('users').select('users.id').whereRef('users.id', '=', 'subscriptions.user_id').where('users.status', '=', 'forgotten'))))
      .orderBy('subscriptions.next_due_at')
      .limit(limit)
      .execute();
    return rows.map((r) => ({ userId: r.user_id, dueAt: r.next_due_at! }));
  }

  /** The user's subscription as the read model has it; 404 subscription_not_found when none. Usage is metering's (metering-queries.ts). */
  async view(userId: string, now = new Date()): Promise<SubscriptionView> {
    const row = await this.d.db
      .selectFrom('subscriptions')
      .innerJoin(currentUsage(now).as('c'), 'c.user_id', 'subscriptions.user_id')
      .select(['plan_id', 'subscriptions.status', 'subscriptions.period_start', 'period_end', 'subscriptions.expires_at', 'subscriptions.time_zone', 'ip_limit', 'c.used', 'c.total as allowance'])
      .where('subscriptions.user_id', '=', userId)
      .executeTakeFirst();
    if (!row) throw new DomainError('subscription_not_found', 'no subscription');
    return {
      planId: row.plan_id,
      status: row.status,
      periodStart: row.period_start?.toISOString() ?? null,
      periodEnd: row.period_end?.toISOString() ?? null,
      usedBytes: row.used,
      allowanceBytes: row.allowance,
      expiresAt: row.expires_at?.toISOString() ?? null,
      timeZone: row.time_zone,
      ipLimit: row.ip_limit,
    };
  }
}
