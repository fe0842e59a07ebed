/**
 * Quotes and checkout. A quote prices a plan for a customer with no effect;
 * a checkout prices it the same way and places the order under the
 * customer's Idempotency-Key: the order's id is derived from the user and the
 * key, so concurrent retries race for one aggregate and exactly one
 * `OrderPlaced` lands (the others find it and answer it); the same key with
 * another body is refused. The first charge follows; with the manual
 * provider the order then waits for an operator.
 */
import { createHash } from 'node:crypto';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import type { Catalogue } from '../plans/catalogue.js';
import { checkPlanId } from '../plans/model.js';
import type { PlanSubscriptions } from '../plans/subscriptions.js';
import type { BillingDeps } from './billing-deps.js';
import { discountOf, type CouponTerms } from './coupons.js';
import { orderDecider, type OrderState, type PlacedOrder } from './order.decider.js';
import type { PaymentMethodResolver, Payments } from './payments.js';
import { price, type Priced, type Reduction } from './pricing.js';
import { MANUAL_PROVIDER } from './providers/manual.js';
import { taxFor, type TaxRates } from './tax.js';

export const MAX_MONTHS = 36;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** The coupons service (coupons.ts) as checkout uses it. */
export interface CouponBook {
  peek(code: string, currency: string, at: Date): Promise<CouponTerms>;
  redeem(code: string, r: { orderId: string; userId: string; currency: string }, actor: Actor, at?: Date): Promise<CouponTerms>;
  release(code: string, orderId: string, reason: string, actor: Actor, at?: Date): Promise<void>;
}

export interface CheckoutInput {
  planId?: unknown;
  months?: unknown;
  paymentMethodId?: unknown;
  coupon?: unknown;
  country?: unknown;
}

interface Request {
  planId: string;
  months: number;
  paymentMethodId: string | null;
  coupon: string | null;
  country: unknown;
}

/** The order id a key gives for a user: 128 bits of sha256(user, key). */
export function orderIdFor(userId: string, idempotencyKey: string): string {
  return `ord_${createHash('sha256').update(`${userId}\n${idempotencyKey}`).digest('hex').slice(0, 32)}`;
}

function request(input: CheckoutInput, code: string): Request {
  const planId = checkPlanId(input.planId);
  const months = input.months ?? 1;
  if (typeof months !== 'number' || !Number.isInteger(months) || months < 1 || months > MAX_MONTHS) throw new DomainError(code, `months: a whole number from 1 to ${MAX_MONTHS}`, { field: 'months' });
  const method = input.paymentMethodId ?? null;
  if (method !== null && typeof method !== 'string') throw new DomainError(code, 'paymentMethodId: a payment method id', { field: 'paymentMethodId' });
  const coupon = input.coupon ?? null;
  if (coupon !== null && typeof coupon !== 'string') throw new DomainError(code, 'coupon: a coupon code', { field: 'coupon' });
  return { planId, months, paymentMethodId: method, coupon: coupon === null ? null : coupon.toUpperCase(), country: input.country ?? null };
}

function couponReduction(terms: CouponTerms, subtotalMinor: bigint): Reduction {
  const label = terms.kind === 'percent' ? `Coupon ${terms.code} (${terms.percentOff}%)` : `Coupon ${terms.code}`;
  return { kind: 'discount', description: label, amountMinor: discountOf(terms, subtotalMinor) };
}

export class Checkout {
  constructor(
    private readonly d: BillingDeps,
    private readonly deps: {
      catalogue: Catalogue;
      subscriptions: PlanSubscriptions;
      payments: Payments;
      methods: PaymentMethodResolver;
      coupons: CouponBook | null;
      taxRates: TaxRates;
    },
  ) {}

  /** The itemised price of a plan for this customer now; changes nothing. */
  async quote(userId: string, input: CheckoutInput, now = new Date()): Promise<Priced> {
    const r = request(input, 'invalid_quote');
    await this.deps.subscriptions.timeZoneOf(userId);
    return this.priceOf(r, 'invalid_quote', (code, currency) => this.coupons().peek(code, currency, now));
  }

  private coupons(): CouponBook {
    if (!this.deps.coupons) throw new DomainError('coupon_not_found', 'no such coupon', { field: 'coupon' });
    return this.deps.coupons;
  }

  private async priceOf(r: Request, code: string, coupon: (code: string, currency: string) => Promise<CouponTerms>): Promise<Priced> {
    const plan = await this.deps.catalogue.current(r.planId);
    if (plan.retired) throw new DomainError('plan_retired', `plan ${r.planId} is retired: it takes no new subscriptions`);
    const tax = taxFor(this.deps.taxRates, r.country, code);
    const base = { plan: { planId: r.planId, name: plan.name, price: plan.terms.price }, months: r.months, tax };
    if (!r.coupon) return price(base);
    const terms = await coupon(r.coupon, plan.terms.price.currency);
    return price({ ...base, reductions: [couponReduction(terms, price(base).subtotalMinor)] });
  }

  /**
   * Places the order for this key (or finds it) and makes its first charge
   * attempt unless one was made. `replayed`: the key had placed it before.
   */
  async checkout(userId: string, idempotencyKey: unknown, input: CheckoutInput, actor: Actor, now = new Date()): Promise<{ orderId: string; state: OrderState; replayed: boolean; seq: number }> {
    if (typeof idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new DomainError('idempotency_key_required', 'send an Idempotency-Key header (1-255 printable ASCII characters, e.g. a UUID): retries with it make one order', { field: 'Idempotency-Key' });
    }
    const r = request(input, 'invalid_checkout');
    const orderId = orderIdFor(userId, idempotencyKey);
    const requestHash = createHash('sha256').update(JSON.stringify([r.planId, r.months, r.paymentMethodId, r.coupon, r.country])).digest('hex');
    const existing = (await this.d.load(orderDecider, 'order', orderId)).state;
    if (existing.order) return this.answer(orderId, existing, requestHash, now);
    await this.deps.subscriptions.timeZoneOf(userId);
    // The method is resolved from the log: another user's id is refused like an unknown one.
    const method = await this.deps.methods.resolve(userId, r.paymentMethodId);
    const priced = await this.priceOf(r, 'invalid_checkout', (code, currency) => this.coupons().redeem(code, { orderId, userId, currency }, actor, now));
    const order: PlacedOrder = { orderId, userId, kind: 'new', planId: r.planId, months: r.months, priced, coupon: r.coupon, provider: method?.provider ?? MANUAL_PROVIDER, paymentMethodId: method?.paymentMethodId ?? null, requestHash, period: null };
    const placed = await this.d.decide(orderDecider, 'order', orderId, { type: 'Place', order, by: actor.actor, at: now }, actor, { assumeNew: true, maxAttempts: 3 });
    return this.answer(orderId, placed.state, requestHash, now, placed.events.length === 0);
  }

  private async answer(orderId: string, state: OrderState, requestHash: string, now: Date, replayed = true): Promise<{ orderId: string; state: OrderState; replayed: boolean; seq: number }> {
    if (state.order?.requestHash !== requestHash) throw new DomainError('idempotency_key_reused', 'this Idempotency-Key was used for another request: use a new key for a new order', { field: 'Idempotency-Key' });
    // No attempt recorded yet: the first caller died before charging, or this is the first caller.
    const charged = state.attempts === 0 && state.status === 'pending' ? await this.deps.payments.charge(orderId, { retry: false, attempt: 1 }, now) : state;
    const { seq } = await this.d.load(orderDecider, 'order', orderId);
    return { orderId, state: charged, replayed, seq };
  }
}
