/**
 * A discount coupon (`<ns>.evt.billing.coupon.<CODE>`): created by an admin,
 * redeemed by orders, a redemption released when its order does not go
 * through, disabled by an admin. The use count is the number of redemptions
 * held (redeemed, not released), decided against this one aggregate, so the
 * event store's optimistic concurrency is what keeps it at maxUses however
 * many checkouts race (producers/billing/coupons.ts serializes them too).
 * Input arrives validated (coupons.ts); the decider owns existence and use.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import { PersistentSet } from './persistent-set.js';

export type CouponEventKey = 'billing.CouponCreated' | 'billing.CouponRedeemed' | 'billing.CouponRedemptionReleased' | 'billing.CouponDisabled';

export type CouponKind = 'percent' | 'fixed';

/** What a coupon takes off, as created: exactly one of percentOff (percent) and amountOffMinor + currency (fixed). */
export interface CouponDefinition {
  kind: CouponKind;
  percentOff: number | null;
  amountOffMinor: bigint | null;
  currency: string | null;
  expiresAt: Date | null;
  maxUses: number | null;
}

export interface CouponState {
  code: string | null;
  definition: CouponDefinition | null;
  disabled: boolean;
  /** Orders holding a use, by order id (shared between versions: folding stays linear in the events). */
  held: PersistentSet;
}

export type CouponCommand =
  | ({ type: 'Create'; code: string; by: string; at: Date } & CouponDefinition)
  | { type: 'Redeem'; orderId: string; userId: string; currency: string; at: Date }
  | { type: 'Release'; orderId: string; reason: string; at: Date }
  | { type: 'Disable'; by: string; at: Date };

type E = DomainEvent<CouponEventKey>;

const notFound = () => new DomainError('coupon_not_found', 'no such coupon');

/** The coupon, when it exists: one answer for a code that never was and one mistyped. */
export function existing(state: CouponState): { code: string; definition: CouponDefinition } {
  if (!state.code || !state.definition) throw notFound();
  return { code: state.code, definition: state.definition };
}

/**
 * Why a new order in `currency` could not take a use at `at`, thrown; what
 * redeem decides and a quote checks (coupons.ts peek) without changing anything.
 */
export function checkRedeemable(state: CouponState, currency: string, at: Date): { code: string; definition: CouponDefinition } {
  const coupon = existing(state);
  const d = coupon.definition;
  if (state.disabled) throw new DomainError('coupon_disabled', `coupon ${coupon.code} is disabled`);
  if (d.expiresAt && at.getTime() >= d.expiresAt.getTime()) throw new DomainError('coupon_expired', `coupon ${coupon.code} expired at ${d.expiresAt.toISOString()}`);
  if (d.kind === 'fixed' && d.currency !== currency) throw new DomainError('coupon_currency_mismatch', `coupon ${coupon.code} is in ${d.currency ?? '?'}, the order in ${currency}`);
  if (d.maxUses !== null && state.held.size >= d.maxUses) throw new DomainError('coupon_exhausted', `coupon ${coupon.code} has no uses left`);
  return coupon;
}

function decide(command: CouponCommand, state: CouponState): E[] {
  if (command.type === 'Create') {
    if (state.code) throw new DomainError('coupon_exists', `coupon ${command.code} already exists`);
    const { code, kind, percentOff, amountOffMinor, currency, expiresAt, maxUses, by, at } = command;
    return [{ type: 'billing.CouponCreated', data: { code, kind, percentOff, amountOffMinor, currency, expiresAt, maxUses, by, createdAt: at } }];
  }
  const { code } = existing(state);
  switch (command.type) {
    case 'Redeem': {
      // A retried checkout of the same order keeps its use, whatever happened to the coupon since.
      if (state.held.has(command.orderId)) return [];
      checkRedeemable(state, command.currency, command.at);
      return [{ type: 'billing.CouponRedeemed', data: { code, orderId: command.orderId, userId: command.userId, redeemedAt: command.at } }];
    }
    case 'Release':
      // An order that holds no use (never redeemed, or released already) has nothing to give back.
      if (!state.held.has(command.orderId)) return [];
      return [{ type: 'billing.CouponRedemptionReleased', data: { code, orderId: command.orderId, reason: command.reason, releasedAt: command.at } }];
    case 'Disable':
      if (state.disabled) return [];
      return [{ type: 'billing.CouponDisabled', data: { code, by: command.by, disabledAt: command.at } }];
  }
}

function evolve(state: CouponState, event: E): CouponState {
  switch (event.type) {
    case 'billing.CouponCreated': {
      const { code, kind, percentOff, amountOffMinor, currency, expiresAt, maxUses } = event.data;
      return { code, definition: { kind: kind === 'fixed' ? 'fixed' : 'percent', percentOff, amountOffMinor, currency, expiresAt, maxUses }, disabled: false, held: PersistentSet.EMPTY };
    }
    case 'billing.CouponRedeemed':
      return { ...state, held: state.held.add(event.data.orderId) };
    case 'billing.CouponRedemptionReleased':
      return { ...state, held: state.held.delete(event.data.orderId) };
    case 'billing.CouponDisabled':
      return { ...state, disabled: true };
  }
}

export const couponDecider: Decider<CouponState, CouponCommand, CouponEventKey> = {
  initialState: { code: null, definition: null, disabled: false, held: PersistentSet.EMPTY },
  decide,
  evolve,
};
