/**
 * Discount coupons (docs/billing-coupons.md): admins create, list, view and
 * disable them; checkout redeems one for an order and releases it when the
 * order does not go through; quotes peek. Redeem and peek decide from the log,
 * never the read model, so a use taken a moment ago counts at once.
 */
import type { Selectable } from 'kysely';
import type { CouponTable } from '../../schema/database.js';
import type { ContextDeps } from '../context-deps.js';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import { validateCouponInput, normalizeCode } from './coupon-input.js';
import { checkRedeemable, couponDecider, existing, type CouponCommand, type CouponDefinition } from './coupon.decider.js';
import { KeyedQueue } from './keyed-queue.js';
import { money, mulDiv, type Money } from './money.js';

/** What a redeemed (or redeemable) coupon takes off an order. */
export type CouponTerms = { code: string; kind: 'percent'; percentOff: number } | { code: string; kind: 'fixed'; amountOff: Money };

/**
 * The discount on a subtotal: a percentage rounded half away from zero to the
 * minor unit (money.ts mulDiv), a fixed amount at most the subtotal; never
 * negative, never more than the subtotal.
 */
export function discountOf(terms: CouponTerms, subtotalMinor: bigint): bigint {
  if (subtotalMinor <= 0n) return 0n;
  const off = terms.kind === 'percent' ? mulDiv(subtotalMinor, BigInt(terms.percentOff), 100n) : terms.amountOff.amountMinor;
  if (off <= 0n) return 0n;
  return off < subtotalMinor ? off : subtotalMinor;
}

export type CouponStatus = 'active' | 'disabled' | 'expired' | 'exhausted';

export interface CouponView {
  code: string;
  kind: 'percent' | 'fixed';
  percentOff: number | null;
  /** JSON integer minor units (money.ts), with its currency. */
  amountOff: { amountMinor: number; currency: string } | null;
  expiresAt: string | null;
  maxUses: number | null;
  /** Redemptions held: redeemed and not released. */
  uses: number;
  /** Null: unlimited. */
  remaining: number | null;
  /** As of the read: disabled wins over expired over exhausted. */
  status: CouponStatus;
  disabledAt: string | null;
  createdAt: string;
}

type CouponRow = Omit<Selectable<CouponTable>, 'amount_off_minor'> & { amount_off_minor: string | null };

function statusOf(row: CouponRow, now: Date): CouponStatus {
  if (row.disabled_at) return 'disabled';
  if (row.expires_at && now.getTime() >= row.expires_at.getTime()) return 'expired';
  if (row.max_uses !== null && row.uses >= row.max_uses) return 'exhausted';
  return 'active';
}

function couponView(row: CouponRow, now: Date): CouponView {
  return {
    code: row.code,
    kind: row.kind === 'fixed' ? 'fixed' : 'percent',
    percentOff: row.percent_off,
    amountOff: row.amount_off_minor !== null && row.currency ? { amountMinor: Number(row.amount_off_minor), currency: row.currency } : null,
    expiresAt: row.expires_at ? row.expires_at.toISOString() : null,
    maxUses: row.max_uses,
    uses: row.uses,
    remaining: row.max_uses === null ? null : Math.max(0, row.max_uses - row.uses),
    status: statusOf(row, now),
    disabledAt: row.disabled_at ? row.disabled_at.toISOString() : null,
    createdAt: row.created_at.toISOString(),
  };
}

function termsOf(code: string, d: CouponDefinition): CouponTerms {
  if (d.kind === 'fixed' && d.amountOffMinor !== null && d.currency !== null) return { code, kind: 'fixed', amountOff: money(d.amountOffMinor, d.currency) };
  if (d.kind === 'percent' && d.percentOff !== null) return { code, kind: 'percent', percentOff: d.percentOff };
  throw new Error(`coupon ${code}: a ${d.kind} coupon without its amount`);
}

/**
 * Attempts per decision on a coupon. Redemptions of one code in one process
 * take turns (KeyedQueue), so a conflict means another process appended in
 * between; with a handful of API processes racing on one code, 5 attempts can
 * run out under a burst, and a checkout must not fail for that.
 */
export const COUPON_MAX_ATTEMPTS = 50;

const notFound = () => new DomainError('coupon_not_found', 'no such coupon');

/** A code as stored; one that no coupon can have is not found, like one no coupon has. */
function codeOf(raw: string): string {
  const code = normalizeCode(raw);
  if (!code) throw notFound();
  return code;
}
const by = (actor: Actor) => actor.actor;

export class Coupons {
  private readonly queue = new KeyedQueue();

  constructor(readonly deps: ContextDeps<'coupon'>) {}

  /** Every write to a coupon, in turn per code within this process. */
  private decide(code: string, command: CouponCommand, actor: Actor) {
    return this.queue.run(code, () => this.deps.decide(couponDecider, 'coupon', code, command, actor, { maxAttempts: COUPON_MAX_ATTEMPTS }));
  }

  async create(input: Record<string, unknown>, actor: Actor, now = new Date()): Promise<{ seq: number; code: string }> {
    const { code, ...definition } = validateCouponInput(input, now);
    const { seq } = await this.decide(code, { type: 'Create', code, ...definition, by: by(actor), at: now }, actor);
    return { seq, code };
  }

  /** No new redemptions; a second call records nothing. */
  async disable(rawCode: string, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    const code = codeOf(rawCode);
    return { seq: (await this.decide(code, { type: 'Disable', by: by(actor), at: now }, actor)).seq };
  }

  /** The terms if an order in `currency` could redeem the coupon at `at`, refused as redeem would be; changes nothing. */
  async peek(rawCode: string, currency: string, at: Date): Promise<CouponTerms> {
    const code = codeOf(rawCode);
    const { state } = await this.deps.load(couponDecider, 'coupon', code);
    const coupon = checkRedeemable(state, currency, at);
    return termsOf(coupon.code, coupon.definition);
  }

  /** One use for the order; the same order again keeps its use and gets the same terms. */
  async redeem(rawCode: string, r: { orderId: string; userId: string; currency: string }, actor: Actor, at = new Date()): Promise<CouponTerms> {
    const code = codeOf(rawCode);
    const { state } = await this.decide(code, { type: 'Redeem', orderId: r.orderId, userId: r.userId, currency: r.currency, at }, actor);
    const coupon = existing(state);
    return termsOf(coupon.code, coupon.definition);
  }

  /** The order's use is free again; an order that holds none records nothing. */
  async release(rawCode: string, orderId: string, reason: string, actor: Actor, at = new Date()): Promise<void> {
    await this.decide(codeOf(rawCode), { type: 'Release', orderId, reason, at }, actor);
  }

  /** Every column, amount_off_minor as text: schema/db.ts refuses int8 values past 2^53 rather than round them. */
  private select() {
    return this.deps.db
      .selectFrom('coupons')
      .select(['code', 'kind', 'percent_off', 'currency', 'expires_at', 'max_uses', 'uses', 'disabled_at', 'created_at', 'last_seq'])
      .select((eb) => eb.cast<string | null>('amount_off_minor', 'text').as('amount_off_minor'));
  }

  /** Every coupon, disabled ones too, by code. */
  async list(now = new Date()): Promise<CouponView[]> {
    return (await this.select().orderBy('code').execute()).map((row) => couponView(row, now));
  }

  async view(rawCode: string, now = new Date()): Promise<CouponView> {
    const row = await this.select().where('code', '=', codeOf(rawCode)).executeTakeFirst();
    if (!row) throw notFound();
    return couponView(row, now);
  }
}
