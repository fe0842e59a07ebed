/**
 * A user's subscription (`<ns>.evt.plans.subscription.<userId>`): one current
 * subscription per user, its history in the events. Pure: the service hands it
 * the plan's terms and the user's time zone as the log has them
 * (subscriptions.ts), and the period math is periods.ts's.
 *
 * Phases: `on_hold` (granted, clock not started), `running` (active, or
 * `limited` when a block-overage allowance is spent), `expired`. `disabled` is
 * an operator's suspension laid over the phase: lifting it returns to whatever
 * the phase is by then. `past_due` is billing's mark over a running
 * subscription whose renewal charge failed: access stays (the grace period),
 * the expiry waits (billing disables the subscription when the grace ends,
 * or a late payment extends it and settles the mark). The status clients see
 * is statusOf().
 *
 * The scheduled commands are idempotent by the instant they act on: rolling a
 * period that is not the current one, expiring at an instant that is not the
 * expiry, or ending a hold that is not held decides nothing, so a scheduler
 * that fires twice (two workers, a restart mid-fire) records one event.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import { periodTerms, type PeriodTerms, type PlanTerms, type Validity, validityOf } from './model.js';
import { addLocalDays, nextPeriodInZone, periodAt, type Period, type ResetStrategy } from './periods.js';

export type SubscriptionEventKey =
  | 'plans.SubscriptionStarted'
  | 'plans.PeriodRolled'
  | 'plans.SubscriptionActivated'
  | 'plans.SubscriptionLimited'
  | 'plans.SubscriptionReactivated'
  | 'plans.SubscriptionExpired'
  | 'plans.GrantAdded'
  | 'plans.SubscriptionDisabled'
  | 'plans.SubscriptionEnabled'
  | 'plans.UsageThresholdReached'
  | 'plans.ExpiryApproaching'
  | 'plans.SubscriptionPastDue'
  | 'plans.SubscriptionPastDueSettled'
  | 'plans.SubscriptionExtended';

export const SUBSCRIPTION_STATUSES = ['active', 'limited', 'past_due', 'expired', 'on_hold', 'disabled'] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];

export interface Grant {
  grantId: string;
  bytes: bigint;
  expiresAt: Date | null;
}

export interface SubscriptionState {
  userId: string | null;
  planId: string | null;
  phase: 'none' | 'on_hold' | 'running' | 'expired';
  limited: boolean;
  disabled: { reason: string } | null;
  /** Billing: the renewal invoice that is unpaid, and when its grace period ends. */
  pastDue: { invoiceId: string; graceUntil: Date } | null;
  startsAt: Date | null;
  /** Where periods and the validity clock count from: the start, or the end of the hold. */
  anchor: Date | null;
  period: Period | null;
  timeZone: string;
  terms: PeriodTerms | null;
  validity: Validity;
  expiresAt: Date | null;
  onHoldUntil: Date | null;
  nextPlanId: string | null;
  /** The idempotency key of the start that made this subscription (an operator's request, a billing order), if any. */
  requestId: string | null;
  /** Billing's orders that extended this subscription: an extension is idempotent by its order. */
  extendedBy: readonly string[];
  grants: readonly Grant[];
  /** Usage thresholds noticed in the current period (metering). */
  notedPercents: readonly number[];
  /** Expiry reminders sent or skipped for the current expiry. */
  remindedDays: readonly number[];
}

/** Shares of the allowance that are noticed, once per period each. */
export const THRESHOLD_PERCENTS = [80, 95, 100] as const;
/** Local days before the expiry that are reminded, once per expiry each. */
export const EXPIRY_REMINDER_DAYS = [3, 1] as const;

/** When each reminder for `expiresAt` falls due: `days` local days before it. */
export function reminderAt(expiresAt: Date, days: number, timeZone: string): Date {
  return addLocalDays(expiresAt, -days, timeZone);
}

/** `order`: a paid billing order, with the expiry the months paid for (not the plan's validity). */
export type StartCause = 'operator' | 'next_plan' | 'order';

export type SubscriptionCommand =
  | { type: 'Start'; userId: string; planId: string; terms: PlanTerms; startsAt: Date; timeZone: string; cause: StartCause; by: string; at: Date; requestId?: string | null; expiresAt?: Date }
  /** Billing: a paid order moves the expiry of the running plan `planId` to `expiresAt` (idempotent by `orderId`). */
  | { type: 'Extend'; orderId: string; planId: string; expiresAt: Date; at: Date }
  /** `terms` are the plan's as they stand now (the retired plan's last ones too): the new period takes them. */
  | { type: 'RollPeriod'; periodEnd: Date; terms: PeriodTerms; timeZone: string; at: Date }
  | { type: 'Activate'; cause: 'first_traffic'; trafficAt: Date; timeZone: string; at: Date }
  | { type: 'Activate'; cause: 'on_hold_timeout'; timeZone: string; at: Date }
  | { type: 'MarkLimited'; periodStart: Date; usedBytes: bigint; cause: string; at: Date }
  | { type: 'Reactivate'; periodStart: Date; cause: string; at: Date }
  /** `next` is the next plan when it can be taken; `nextCause` says why not otherwise. */
  | { type: 'Expire'; expiresAt: Date; next: { planId: string; terms: PlanTerms } | null; nextCause?: 'next_plan_retired' | 'next_plan_missing'; timeZone: string; at: Date }
  | { type: 'AddGrant'; grantId: string; bytes: bigint; expiresAt: Date | null; by: string; at: Date }
  | { type: 'Disable'; reason: string; by: string; at: Date }
  | { type: 'Enable'; reason: string; by: string; at: Date }
  /** Metering: the period's usage as projected; the thresholds it reached that were not noticed yet are. */
  | { type: 'NoteUsage'; periodStart: Date; usedBytes: bigint; at: Date }
  /** The scheduler: the nearest reminder due for this expiry, unless noticed (earlier ones due too are skipped). */
  | { type: 'NoteExpiry'; expiresAt: Date; at: Date }
  /** Billing: the renewal charge of `invoiceId` failed; access stays until `graceUntil`, the expiry waits for billing. */
  | { type: 'MarkPastDue'; invoiceId: string; graceUntil: Date; at: Date }
  /** Billing: `invoiceId` was paid (late); the mark is lifted. */
  | { type: 'SettlePastDue'; invoiceId: string; at: Date };

type E = DomainEvent<SubscriptionEventKey>;

/**
 * One status from the phase and the marks over it. `limited` outranks
 * `past_due` because the status is what access reads (access.ts): a spent
 * block-overage allowance cuts access whatever billing says.
 */
export function statusOf(state: Pick<SubscriptionState, 'phase' | 'limited' | 'disabled'> & { pastDue?: unknown }): SubscriptionStatus | null {
  if (state.phase === 'none') return null;
  if (state.phase === 'expired') return 'expired';
  if (state.disabled) return 'disabled';
  if (state.phase === 'on_hold') return 'on_hold';
  if (state.limited) return 'limited';
  return state.pastDue ? 'past_due' : 'active';
}

const time = (d: Date | null | undefined) => d?.getTime() ?? null;
const later = (a: Date, b: Date) => (a.getTime() >= b.getTime() ? a : b);

/** The period running at `at` and the expiry, for a clock started at `anchor`. */
function clock(strategy: ResetStrategy, validity: Validity, anchor: Date, timeZone: string, at: Date): { period: Period; expiresAt: Date | null } {
  return {
    period: periodAt(strategy, anchor, timeZone, later(at, anchor)),
    expiresAt: validity.kind === 'none' ? null : addLocalDays(anchor, validity.days, timeZone),
  };
}

function started(c: { userId: string; planId: string; terms: PlanTerms; startsAt: Date; timeZone: string; cause: StartCause; by: string; at: Date; requestId?: string | null; expiresAt?: Date }): E {
  const { terms, startsAt, timeZone } = c;
  // Paid months run from the purchase: no hold, and the expiry is what was paid for.
  const onHold = terms.validity.kind === 'on_hold' && !c.expiresAt;
  const running = onHold ? null : { ...clock(terms.resetStrategy, terms.validity, startsAt, timeZone, c.at), ...(c.expiresAt ? { expiresAt: c.expiresAt } : {}) };
  return {
    type: 'plans.SubscriptionStarted',
    data: {
      userId: c.userId,
      planId: c.planId,
      cause: c.cause,
      by: c.by,
      status: onHold ? 'on_hold' : 'active',
      startsAt,
      periodStart: running?.period.start ?? null,
      periodEnd: running?.period.end ?? null,
      timeZone,
      ...periodTerms(terms),
      validityKind: terms.validity.kind,
      validityDays: terms.validity.kind === 'none' ? null : terms.validity.days,
      expiresAt: running?.expiresAt ?? null,
      onHoldUntil: onHold && terms.validity.kind === 'on_hold' ? addLocalDays(startsAt, terms.validity.timeoutDays, timeZone) : null,
      nextPlanId: terms.nextPlanId,
      startedAt: c.at,
      requestId: c.requestId ?? null,
    },
  };
}

function requireSubscription(state: SubscriptionState): string {
  if (!state.userId || state.phase === 'none') throw new DomainError('subscription_not_found', 'this user has no subscription');
  return state.userId;
}

function decide(command: SubscriptionCommand, state: SubscriptionState): E[] {
  const { at } = command;
  if (command.type === 'Start') {
    if (command.startsAt.getTime() > at.getTime() + 60_000) throw new DomainError('invalid_subscription', 'startsAt: must not be in the future (a later start is not built yet)', { field: 'startsAt' });
    // A retried grant of a plan (the same request id) must not restart the period, wiping usage and grants.
    if (command.requestId && state.phase !== 'none' && state.requestId === command.requestId) return [];
    const event = started(command);
    const expires = event.type === 'plans.SubscriptionStarted' ? event.data.expiresAt : null;
    if (expires && expires.getTime() <= at.getTime()) throw new DomainError('invalid_subscription', 'startsAt: the subscription would already have expired', { field: 'startsAt' });
    return [event];
  }
  const userId = requireSubscription(state);
  switch (command.type) {
    case 'RollPeriod': {
      const period = state.period;
      if (state.phase !== 'running' || !period?.end || period.end.getTime() !== command.periodEnd.getTime()) return [];
      if (at.getTime() < period.end.getTime()) throw new DomainError('period_not_over', `the period ends at ${period.end.toISOString()}`);
      // The expiry comes first when it falls within the period: there is no next period to roll to.
      if (state.expiresAt && state.expiresAt.getTime() <= period.end.getTime()) return [];
      // The next period starts where this one ended; a new zone moves its end by at most the offsets' difference (periods.ts).
      const next = nextPeriodInZone(command.terms.resetStrategy, state.anchor ?? period.start, state.timeZone, command.timeZone, period);
      return [
        {
          type: 'plans.PeriodRolled',
          data: { userId, planId: state.planId ?? '', previousPeriodEnd: period.end, periodStart: next.start, periodEnd: next.end, timeZone: command.timeZone, ...periodTerms(command.terms), rolledAt: at },
        },
      ];
    }
    case 'Activate': {
      if (state.phase !== 'on_hold' || !state.terms || !state.startsAt) return [];
      let clockStart: Date;
      if (command.cause === 'first_traffic') clockStart = later(command.trafficAt, state.startsAt);
      else {
        if (!state.onHoldUntil || at.getTime() < state.onHoldUntil.getTime()) throw new DomainError('hold_not_over', `the hold ends at ${state.onHoldUntil?.toISOString() ?? 'first traffic'}`);
        clockStart = state.onHoldUntil;
      }
      const { period, expiresAt } = clock(state.terms.resetStrategy, state.validity, clockStart, command.timeZone, clockStart);
      return [
        {
          type: 'plans.SubscriptionActivated',
          data: { userId, planId: state.planId ?? '', cause: command.cause, clockStart, periodStart: period.start, periodEnd: period.end, timeZone: command.timeZone, expiresAt, activatedAt: at },
        },
      ];
    }
    case 'MarkLimited':
      if (state.phase !== 'running' || state.limited || state.terms?.overage !== 'block' || time(state.period?.start) !== command.periodStart.getTime()) return [];
      return [{ type: 'plans.SubscriptionLimited', data: { userId, periodStart: command.periodStart, cause: command.cause, usedBytes: command.usedBytes, limitedAt: at } }];
    case 'Reactivate':
      if (!state.limited || time(state.period?.start) !== command.periodStart.getTime()) return [];
      return [{ type: 'plans.SubscriptionReactivated', data: { userId, periodStart: command.periodStart, cause: command.cause, reactivatedAt: at } }];
    case 'Expire': {
      if (!state.expiresAt || state.phase !== 'running' || state.expiresAt.getTime() !== command.expiresAt.getTime()) return [];
      if (at.getTime() < state.expiresAt.getTime()) throw new DomainError('not_expired', `the subscription expires at ${state.expiresAt.toISOString()}`);
      const { next } = command;
      const cause = next ? 'validity_ended' : (command.nextCause ?? 'validity_ended');
      const expired: E = { type: 'plans.SubscriptionExpired', data: { userId, planId: state.planId ?? '', expiresAt: state.expiresAt, nextPlanId: next?.planId ?? null, cause, expiredAt: at } };
      if (!next) return [expired];
      return [expired, started({ userId, planId: next.planId, terms: next.terms, startsAt: state.expiresAt, timeZone: command.timeZone, cause: 'next_plan', by: 'system', at })];
    }
    case 'AddGrant': {
      if (state.phase === 'expired') throw new DomainError('subscription_expired', 'this subscription has expired: start a plan first');
      const known = state.grants.find((g) => g.grantId === command.grantId);
      if (known) {
        if (known.bytes === command.bytes && time(known.expiresAt) === time(command.expiresAt)) return [];
        throw new DomainError('grant_conflict', `grant ${command.grantId} was already added with other terms`);
      }
      if (command.bytes <= 0n) throw new DomainError('invalid_grant', 'bytes: must be more than 0', { field: 'bytes' });
      if (command.expiresAt && command.expiresAt.getTime() <= at.getTime()) throw new DomainError('invalid_grant', 'expiresAt: must be in the future', { field: 'expiresAt' });
      const grant: Grant = { grantId: command.grantId, bytes: command.bytes, expiresAt: command.expiresAt };
      // Whether the grant gives a limited period room again is metering's to say: it knows what earlier
      // periods already drew from each grant, which this aggregate does not (its worker then reactivates).
      return [{ type: 'plans.GrantAdded', data: { userId, ...grant, by: command.by, grantedAt: at } }];
    }
    case 'Disable':
      if (state.phase === 'expired') throw new DomainError('subscription_expired', 'this subscription has expired');
      return state.disabled ? [] : [{ type: 'plans.SubscriptionDisabled', data: { userId, reason: command.reason, by: command.by, disabledAt: at } }];
    case 'Enable':
      return state.disabled ? [{ type: 'plans.SubscriptionEnabled', data: { userId, reason: command.reason, by: command.by, enabledAt: at } }] : [];
    case 'NoteUsage': {
      const allowance = state.terms?.allowanceBytes;
      if (state.phase !== 'running' || !allowance || time(state.period?.start) !== command.periodStart.getTime()) return [];
      return THRESHOLD_PERCENTS.filter((p) => !state.notedPercents.includes(p) && command.usedBytes * 100n >= allowance * BigInt(p)).map((percent) => ({
        type: 'plans.UsageThresholdReached',
        data: { userId, periodStart: command.periodStart, percent, usedBytes: command.usedBytes, allowanceBytes: allowance, reachedAt: at },
      }));
    }
    case 'NoteExpiry': {
      const { expiresAt } = state;
      if (state.phase !== 'running' || !expiresAt || expiresAt.getTime() !== command.expiresAt.getTime() || at.getTime() >= expiresAt.getTime()) return [];
      const due = EXPIRY_REMINDER_DAYS.filter((d) => reminderAt(expiresAt, d, state.timeZone).getTime() <= at.getTime());
      const nearest = Math.min(...due);
      if (due.length === 0 || state.remindedDays.includes(nearest)) return [];
      return [{ type: 'plans.ExpiryApproaching', data: { userId, expiresAt, daysLeft: nearest, notedAt: at } }];
    }
    case 'MarkPastDue':
      if (state.phase === 'expired') throw new DomainError('subscription_expired', 'this subscription has expired');
      // A second failed invoice while already past due keeps the first one's grace: failing again buys no time.
      if (state.pastDue) return [];
      if (command.graceUntil.getTime() < at.getTime()) throw new DomainError('invalid_grace', 'graceUntil: must not be in the past', { field: 'graceUntil' });
      return [{ type: 'plans.SubscriptionPastDue', data: { userId, invoiceId: command.invoiceId, graceUntil: command.graceUntil, markedAt: at } }];
    case 'Extend': {
      if (state.extendedBy.includes(command.orderId) || state.requestId === command.orderId) return [];
      if (state.phase === 'expired') throw new DomainError('subscription_expired', 'this subscription has expired: start it again');
      if (state.phase !== 'running' || state.planId !== command.planId) throw new DomainError('subscription_changed', `the subscription is no longer a running ${command.planId}`);
      if (state.expiresAt && command.expiresAt.getTime() <= state.expiresAt.getTime()) throw new DomainError('invalid_extension', 'expiresAt: must be after the current expiry', { field: 'expiresAt' });
      return [{ type: 'plans.SubscriptionExtended', data: { userId, orderId: command.orderId, planId: command.planId, previousExpiresAt: state.expiresAt, expiresAt: command.expiresAt, extendedAt: at } }];
    }
    case 'SettlePastDue':
      if (state.pastDue?.invoiceId !== command.invoiceId) return [];
      return [{ type: 'plans.SubscriptionPastDueSettled', data: { userId, invoiceId: command.invoiceId, settledAt: at } }];
  }
}

function evolve(state: SubscriptionState, event: E): SubscriptionState {
  switch (event.type) {
    case 'plans.SubscriptionStarted': {
      const d = event.data;
      const onHold = d.status === 'on_hold';
      return {
        ...initialState,
        userId: d.userId,
        planId: d.planId,
        phase: onHold ? 'on_hold' : 'running',
        // An operator's grant lifts a suspension; a move to the next plan keeps it.
        disabled: d.cause === 'next_plan' ? state.disabled : null,
        startsAt: d.startsAt,
        anchor: onHold ? null : d.startsAt,
        period: d.periodStart ? { start: d.periodStart, end: d.periodEnd } : null,
        timeZone: d.timeZone,
        terms: periodTerms({ ...d, resetStrategy: d.resetStrategy as ResetStrategy, inboundKinds: d.inboundKinds as PeriodTerms['inboundKinds'], overage: d.overage as PeriodTerms['overage'] }),
        validity: validityOf(d.validityKind, d.validityDays, null),
        expiresAt: d.expiresAt,
        onHoldUntil: d.onHoldUntil,
        nextPlanId: d.nextPlanId,
        requestId: d.requestId,
      };
    }
    case 'plans.PeriodRolled': {
      const d = event.data;
      const terms = periodTerms({ ...d, resetStrategy: d.resetStrategy as ResetStrategy, inboundKinds: d.inboundKinds as PeriodTerms['inboundKinds'], overage: d.overage as PeriodTerms['overage'] });
      return { ...state, period: { start: d.periodStart ?? d.previousPeriodEnd, end: d.periodEnd }, timeZone: d.timeZone, terms, limited: false, notedPercents: [] };
    }
    case 'plans.SubscriptionActivated': {
      const d = event.data;
      return { ...state, phase: 'running', anchor: d.clockStart, period: { start: d.periodStart ?? d.clockStart, end: d.periodEnd }, timeZone: d.timeZone, expiresAt: d.expiresAt, onHoldUntil: null, notedPercents: [], remindedDays: [] };
    }
    case 'plans.SubscriptionLimited':
      return { ...state, limited: true };
    case 'plans.SubscriptionReactivated':
      return { ...state, limited: false };
    case 'plans.SubscriptionExpired':
      return { ...state, phase: 'expired', limited: false };
    case 'plans.GrantAdded': {
      const { grantId, bytes, expiresAt } = event.data;
      return { ...state, grants: [...state.grants, { grantId, bytes, expiresAt }] };
    }
    case 'plans.SubscriptionDisabled':
      return { ...state, disabled: { reason: event.data.reason } };
    case 'plans.SubscriptionEnabled':
      return { ...state, disabled: null };
    case 'plans.UsageThresholdReached':
      return { ...state, notedPercents: [...state.notedPercents, event.data.percent] };
    case 'plans.ExpiryApproaching':
      // The reminders before it are past: they are not sent late.
      return { ...state, remindedDays: EXPIRY_REMINDER_DAYS.filter((d) => d >= event.data.daysLeft) };
    case 'plans.SubscriptionPastDue':
      return { ...state, pastDue: { invoiceId: event.data.invoiceId, graceUntil: event.data.graceUntil } };
    case 'plans.SubscriptionPastDueSettled':
      return { ...state, pastDue: null };
    case 'plans.SubscriptionExtended':
      // A later expiry brings its own reminders.
      return { ...state, expiresAt: event.data.expiresAt, extendedBy: [...state.extendedBy, event.data.orderId], remindedDays: [] };
  }
}

const initialState: SubscriptionState = {
  userId: null,
  planId: null,
  phase: 'none',
  limited: false,
  disabled: null,
  pastDue: null,
  startsAt: null,
  anchor: null,
  period: null,
  timeZone: 'UTC',
  terms: null,
  validity: { kind: 'none' },
  expiresAt: null,
  onHoldUntil: null,
  nextPlanId: null,
  requestId: null,
  extendedBy: [],
  grants: [],
  notedPercents: [],
  remindedDays: [],
};

/** What the scheduler must do for this subscription at `now`, if anything: the instant it acts on is the command's idempotency key. */
export type Due = { kind: 'activate' } | { kind: 'expire'; expiresAt: Date } | { kind: 'roll'; periodEnd: Date };

export function dueAt(state: SubscriptionState, now: Date): Due | null {
  const t = now.getTime();
  if (state.phase === 'on_hold') return state.onHoldUntil && state.onHoldUntil.getTime() <= t ? { kind: 'activate' } : null;
  if (state.phase !== 'running') return null;
  const end = state.period?.end ?? null;
  // Past due, the expiry is billing's to decide (the grace period), so the scheduler leaves it alone; periods still roll.
  if (!state.pastDue && state.expiresAt && state.expiresAt.getTime() <= t && (!end || state.expiresAt.getTime() <= end.getTime())) return { kind: 'expire', expiresAt: state.expiresAt };
  if (end && end.getTime() <= t) return { kind: 'roll', periodEnd: end };
  return null;
}

/** When the next scheduled command falls due: what the read model's `next_due_at` holds. */
export function nextDueAt(s: { phase: SubscriptionState['phase']; onHoldUntil: Date | null; expiresAt: Date | null; periodEnd: Date | null; pastDue?: boolean }): Date | null {
  if (s.phase === 'on_hold') return s.onHoldUntil;
  if (s.phase !== 'running') return null;
  const candidates = [s.pastDue ? null : s.expiresAt, s.periodEnd].filter((d): d is Date => d !== null);
  return candidates.length === 0 ? null : new Date(Math.min(...candidates.map((d) => d.getTime())));
}

export const subscriptionDecider: Decider<SubscriptionState, SubscriptionCommand, SubscriptionEventKey> = { initialState, decide, evolve };
