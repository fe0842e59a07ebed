/**
 * Renewals and dunning on the real log and read models, with the clock passed
 * in: a renewal at local midnight on the last day of a month in
 * Pacific/Auckland and America/Los_Angeles is ordered and invoiced once
 * however often and whenever it fires (the Lago bug); an unpaid manual
 * renewal makes the subscription past_due, the end of the grace disables it,
 * a late payment extends it from the old expiry and lifts both; a declined
 * card is retried after 1, 3 and 5 days, then given up, and never charged
 * twice for one attempt.
 */
import { describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { Billing } from '../../producers/billing/billing.js';
import type { ChargeRequest, ChargeResult, PaymentProvider } from '../../producers/billing/providers/provider.js';
import { ManualProvider, ProviderRegistry } from '../../producers/billing/providers/manual.js';
import { GRACE_MS, renewalOrderId, type BillingDue } from '../../producers/billing/renewals.js';
import { addLocalMonths } from '../../producers/plans/periods.js';
import { apiSuite, expectStatus } from '../support/api-suite.js';
import { eventually } from '../support/isolated.js';
import { readLog } from '../support/log.js';
import { createPlan } from '../support/plans.js';

const OPERATOR = { actor: 'operator:test' };
const DAY = 86_400_000;

/** Local midnight at the start of `date` (YYYY-MM-DD) in `zone`. */
function localMidnight(date: string, zone: string): Date {
  const guess = new Date(`${date}T00:00:00Z`);
  const offset = (d: Date) => {
    const parts = new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit' }).formatToParts(d);
    const get = (t: string) => Number(parts.find((p) => p.type === t)?.value);
    return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute')) - d.getTime();
  };
  return new Date(guess.getTime() - offset(new Date(guess.getTime() - offset(guess))));
}

/** A provider that declines every charge (a card with no funds), counting calls by idempotency key. */
class DecliningProvider implements PaymentProvider {
  readonly name = 'declining';
  readonly keys: string[] = [];
  charge(request: ChargeRequest): Promise<ChargeResult> {
    this.keys.push(request.idempotencyKey);
    return Promise.resolve({ status: 'failed', providerRef: `pi_${request.idempotencyKey}`, reason: 'insufficient_funds', retryable: true });
  }
  refund(): Promise<{ providerRef: string }> {
    return Promise.resolve({ providerRef: 're_x' });
  }
}

describe('billing renewals and dunning', () => {
  const suite = apiSuite();
  const billing = () => suite.api.billing;

  async function customer(zone: string) {
    const user = await suite.signedIn();
    expectStatus(await suite.call('PUT', '/v1/account/time-zone', { token: user.token, body: { timeZone: zone } }), 200);
    await eventually(async () => (await suite.api.plans.subscriptions.timeZoneOf(user.id)) === zone);
    return user;
  }

  async function buy(b: Billing, userId: string, planId: string, months: number, now: Date) {
    const { orderId } = await b.checkout.checkout(userId, uuidv7(), { planId, months, country: 'US' }, { actor: `user:${userId}` }, now);
    await b.payments.confirm(orderId, { reference: `REF-${orderId.slice(-6)}` }, OPERATOR, now);
    await eventually(async () => (await b.queries.order(orderId)).status === 'fulfilled');
    return orderId;
  }

  /** The items due at `now` for this user, once the read models show what came before. */
  const dueFor = async (b: Billing, userId: string, now: Date, kind: BillingDue['kind']) =>
    eventually(async () => {
      const items = (await b.renewals.due(now, 1000)).filter((i) => i.kind === kind && ('userId' in i ? i.userId === userId : true));
      return items.length > 0 ? items : undefined;
    });

  const invoicesOf = async (userId: string) =>
    (await readLog(suite.env.rt, suite.env.rt.names.aggregateSubjects('billing', 'invoice'))).filter((e) => e.type === 'billing.InvoiceDrafted' && e.data.userId === userId);

  for (const zone of ['Pacific/Auckland', 'America/Los_Angeles']) {
    it(`renews at local midnight on the last day of a month in ${zone} once, however often it fires`, async () => {
      const planId = await createPlan(suite.api.plans, { price: { amountMinor: 700, currency: 'USD' } });
      const user = await customer(zone);
      // Bought at local midnight on 31 January: one month later is local midnight on 28 February, the month's last day.
      const bought = localMidnight('2027-01-31', zone);
      await buy(billing(), user.id, planId, 1, bought);
      const expiresAt = localMidnight('2027-02-28', zone);
      expect((await suite.api.plans.subscriptions.current(user.id)).expiresAt).toEqual(expiresAt);

      const [item] = await dueFor(billing(), user.id, new Date(expiresAt.getTime() - 23 * 3_600_000), 'renew');
      expect(item).toMatchObject({ kind: 'renew', expiresAt });
      // Fired at once by two workers, again after a restart, and at instants on either side of UTC midnight.
      await Promise.all([billing().renewals.fire(item!, new Date(expiresAt.getTime() - 23 * 3_600_000)), billing().renewals.fire(item!, new Date(expiresAt.getTime() - 22 * 3_600_000))]);
      await billing().renewals.renew(user.id, expiresAt, new Date(expiresAt.getTime() - 3_600_000));
      const orderId = renewalOrderId(user.id, expiresAt);
      const order = await eventually(async () => (await billing().queries.orders({ userId: user.id })).find((o) => o.id === orderId));
      expect(order).toMatchObject({ kind: 'renewal', status: 'pending', periodStart: expiresAt.toISOString(), periodEnd: localMidnight('2027-03-31', zone).toISOString(), totalMinor: 700 });
      // The 31st stays the anchor: March's renewal runs to the 31st, not the 28th.
      expect(addLocalMonths(expiresAt, 1, zone, 31)).toEqual(localMidnight('2027-03-31', zone));
      expect(await invoicesOf(user.id)).toHaveLength(2);
      // Once the read models have it all (the order, the past-due mark), nothing about this expiry is due any more.
      await eventually(async () => (await billing().renewals.due(new Date(expiresAt.getTime() - 1000), 1000)).every((i) => !(i.kind === 'renew' && i.userId === user.id)));
    });
  }

  it('an unpaid manual renewal is past due, disabled when the grace ends, and reinstated by a late payment', async () => {
    const planId = await createPlan(suite.api.plans, { price: { amountMinor: 900, currency: 'EUR' } });
    const user = await customer('Europe/Berlin');
    const bought = new Date('2027-03-10T09:00:00Z');
    await buy(billing(), user.id, planId, 1, bought);
    const expiresAt = addLocalMonths(bought, 1, 'Europe/Berlin');
    const [renew] = await dueFor(billing(), user.id, new Date(expiresAt.getTime() - 12 * 3_600_000), 'renew');
    await billing().renewals.fire(renew!, new Date(expiresAt.getTime() - 12 * 3_600_000));
    const orderId = renewalOrderId(user.id, expiresAt);
    const sub = await suite.api.plans.subscriptions.current(user.id);
    expect(sub.pastDue).toEqual({ invoiceId: `inv_${orderId.slice(4)}`, graceUntil: new Date(expiresAt.getTime() + GRACE_MS) });

    const [overdue] = await dueFor(billing(), user.id, new Date(expiresAt.getTime() + GRACE_MS + 1000), 'overdue');
    await billing().renewals.fire(overdue!, new Date(expiresAt.getTime() + GRACE_MS + 1000));
    expect((await suite.api.plans.subscriptions.current(user.id)).disabled).toEqual({ reason: 'payment_overdue' });

    await billing().payments.confirm(orderId, { reference: 'LATE-1' }, OPERATOR, new Date(expiresAt.getTime() + GRACE_MS + DAY));
    const after = await suite.api.plans.subscriptions.current(user.id);
    expect(after).toMatchObject({ pastDue: null, disabled: null, phase: 'running' });
    expect(after.expiresAt).toEqual(addLocalMonths(expiresAt, 1, 'Europe/Berlin', 10));
    const invoice = await billing().invoicing.load(`inv_${orderId.slice(4)}`);
    expect(invoice.status).toBe('paid');
  });

  it('retries a declined renewal after 1, 3 and 5 days, each attempt charged once, then gives up', async () => {
    const declining = new DecliningProvider();
    const planId = await createPlan(suite.api.plans, { price: { amountMinor: 1200, currency: 'EUR' } });
    const user = await suite.signedIn();
    // A Billing whose default payment method is the declining card: the providers are the test's, the log and read models the suite's.
    const b = new Billing({
      handler: suite.api.billing.deps.handler,
      db: suite.env.rt.db,
      plans: suite.api.plans,
      providers: new ProviderRegistry([new ManualProvider(), declining]),
      methods: { resolve: (_u, id) => Promise.resolve(id === null ? { paymentMethodId: 'pm-test', provider: 'declining', token: 'tok' } : null) },
      coupons: null,
      taxRates: new Map(),
      timeZone: 'UTC',
    });
    const bought = new Date('2027-05-01T12:00:00Z');
    const first = (await b.checkout.checkout(user.id, uuidv7(), { planId, country: 'US' }, OPERATOR, bought)).orderId;
    // The purchase itself is declined and not retried: its customer is there to try again; pay it by hand.
    expect((await b.payments.load(first)).status).toBe('failed');
    await b.payments.recordPayment(first, { provider: 'declining', providerRef: 'pi_manual', amount: { amountMinor: 1200n, currency: 'EUR' } }, OPERATOR, bought);
    const expiresAt = addLocalMonths(bought, 1, 'UTC');
    const renewedAt = new Date(expiresAt.getTime() - 20 * 3_600_000);
    const [renew] = await dueFor(b, user.id, renewedAt, 'renew');
    await b.renewals.fire(renew!, renewedAt);
    const orderId = renewalOrderId(user.id, expiresAt);
    for (const [i, days] of [1, 3, 5].entries()) {
      const at = new Date(renewedAt.getTime() + days * DAY);
      const [retry] = await eventually(async () => {
        const items = (await b.renewals.due(at, 1000)).filter((d) => d.kind === 'retry' && d.orderId === orderId && d.attempt === i + 2);
        return items.length > 0 ? items : undefined;
      });
      // Two workers fire the same attempt: one charge.
      await Promise.all([b.renewals.fire(retry!, at), b.renewals.fire(retry!, at)]);
    }
    expect(declining.keys.filter((k) => k.startsWith(orderId))).toEqual([1, 2, 3, 4].map((n) => `${orderId}-${n}`));
    const order = await b.payments.load(orderId);
    expect(order).toMatchObject({ status: 'failed', attempts: 4, nextAttemptAt: null });
    const failures = (await readLog(suite.env.rt, suite.env.rt.names.aggregate('billing', 'invoice', `inv_${orderId.slice(4)}`))).filter((e) => e.type === 'billing.InvoicePaymentFailed');
    expect(failures).toHaveLength(4);
    expect((await suite.api.plans.subscriptions.current(user.id)).pastDue?.invoiceId).toBe(`inv_${orderId.slice(4)}`);
  });

  it('an upgrade takes effect now with a credit for the unused time; a downgrade is ordered as the next renewal and moves the plan at the expiry', async () => {
    const basic = await createPlan(suite.api.plans, { price: { amountMinor: 1000, currency: 'EUR' } });
    const pro = await createPlan(suite.api.plans, { price: { amountMinor: 3000, currency: 'EUR' } });
    const user = await customer('UTC');
    const b = billing();
    const bought = new Date('2027-04-01T00:00:00Z');
    await buy(b, user.id, basic, 1, bought);
    // Half of April is gone on the 16th: half of the 10.00 paid comes back.
    const midway = new Date('2027-04-16T00:00:00Z');
    const up = await b.planChanges.change(user.id, uuidv7(), { planId: pro, country: 'US' }, { actor: `user:${user.id}` }, midway);
    expect(up.change).toBe('upgrade');
    expect(up.state.order?.priced.lines.map((l) => [l.kind, l.amountMinor])).toEqual([['plan', 3000n], ['proration', -500n]]);
    await b.payments.confirm(up.orderId, { reference: 'UP-1' }, OPERATOR, midway);
    await eventually(async () => (await b.queries.order(up.orderId)).status === 'fulfilled');
    const upgraded = await suite.api.plans.subscriptions.current(user.id);
    expect(upgraded).toMatchObject({ planId: pro, phase: 'running', requestId: up.orderId });
    expect(upgraded.expiresAt).toEqual(new Date('2027-05-16T00:00:00Z'));
    await expect(b.planChanges.change(user.id, uuidv7(), { planId: pro }, OPERATOR, midway)).rejects.toMatchObject({ code: 'plan_unchanged' });

    // Down to basic: nothing changes now; the renewal of 16 May is for basic.
    const down = await eventually(async () => b.planChanges.change(user.id, uuidv7(), { planId: basic, country: 'US' }, OPERATOR, new Date('2027-04-20T00:00:00Z')).catch(() => undefined));
    expect(down).toMatchObject({ change: 'downgrade', orderId: renewalOrderId(user.id, upgraded.expiresAt!) });
    expect((await suite.api.plans.subscriptions.current(user.id)).planId).toBe(pro);
    const renewAt = new Date('2027-05-15T06:00:00Z');
    const [renew] = await dueFor(b, user.id, renewAt, 'renew');
    await b.renewals.fire(renew!, renewAt);
    await b.payments.confirm(down.orderId, { reference: 'DOWN-1' }, OPERATOR, renewAt);
    // Paid a day early, it waits for the expiry: pro runs to its end.
    expect((await b.payments.load(down.orderId)).status).toBe('paid');
    expect((await suite.api.plans.subscriptions.current(user.id)).planId).toBe(pro);
    const atExpiry = new Date('2027-05-16T00:00:01Z');
    const [settle] = await eventually(async () => {
      const items = (await b.renewals.due(atExpiry, 1000)).filter((i) => i.kind === 'settle' && i.orderId === down.orderId);
      return items.length > 0 ? items : undefined;
    });
    await b.renewals.fire(settle!, atExpiry);
    const moved = await suite.api.plans.subscriptions.current(user.id);
    expect(moved).toMatchObject({ planId: basic, phase: 'running', pastDue: null });
    expect(moved.expiresAt).toEqual(new Date('2027-06-16T00:00:00Z'));
  });

  it('bills soft-overage traffic of a closed paid period, in whole GiB at the plan\'s price, with the renewal after it', async () => {
    const GiB = 1024 ** 3;
    const planId = await createPlan(suite.api.plans, { price: { amountMinor: 1000, currency: 'EUR' }, allowanceBytes: String(GiB), resetStrategy: 'month', overage: 'soft', overagePriceMinor: 150 });
    const user = await customer('UTC');
    const b = billing();
    await buy(b, user.id, planId, 1, new Date('2027-01-01T00:00:00Z'));
    // The metered usage of January as the metering read model holds it: 3.5 GiB against a 1 GiB allowance.
    await suite.env.rt.db
      .insertInto('subscription_usage')
      .values({ user_id: user.id, period_start: new Date('2027-01-01T00:00:00Z'), allowance_bytes: GiB, uplink_bytes: GiB / 2, downlink_bytes: 3 * GiB, grant_bytes: 0, last_at: new Date('2027-01-31T00:00:00Z') })
      .execute();
    const renewAndPay = async (expiresAt: Date) => {
      const at = new Date(expiresAt.getTime() - 20 * 3_600_000);
      const [item] = await dueFor(b, user.id, at, 'renew');
      await b.renewals.fire(item!, at);
      const orderId = renewalOrderId(user.id, expiresAt);
      await b.payments.confirm(orderId, { reference: `R-${orderId.slice(-4)}` }, OPERATOR, at);
      await eventually(async () => (await b.queries.order(orderId)).status === 'fulfilled');
      return (await b.payments.load(orderId)).order!.priced;
    };
    // February's renewal comes a day before January's paid period is over: nothing is closed yet, nothing billed.
    expect((await renewAndPay(new Date('2027-02-01T00:00:00Z'))).lines.map((l) => l.kind)).toEqual(['plan']);
    const march = await renewAndPay(new Date('2027-03-01T00:00:00Z'));
    expect(march.lines).toEqual([
      { kind: 'plan', description: `${planId}, 1 month`, quantity: 1, unitAmountMinor: 1000n, amountMinor: 1000n },
      { kind: 'overage', description: 'Traffic above the allowance, 2027-01-01 to 2027-02-01 (GiB)', quantity: 3, unitAmountMinor: 150n, amountMinor: 450n },
    ]);
    expect(march.totalMinor).toBe(1450n);
  });

  it('a renewal an operator cancels voids its invoice and lifts the past-due mark: the subscription runs out at its expiry', async () => {
    const planId = await createPlan(suite.api.plans, { price: { amountMinor: 800, currency: 'EUR' } });
    const user = await customer('UTC');
    const b = billing();
    const bought = new Date('2027-06-01T00:00:00Z');
    await buy(b, user.id, planId, 1, bought);
    const expiresAt = new Date('2027-07-01T00:00:00Z');
    const at = new Date(expiresAt.getTime() - 20 * 3_600_000);
    const [item] = await dueFor(b, user.id, at, 'renew');
    await b.renewals.fire(item!, at);
    const orderId = renewalOrderId(user.id, expiresAt);
    expect((await suite.api.plans.subscriptions.current(user.id)).pastDue).not.toBeNull();
    await b.payments.cancel(orderId, 'customer left', OPERATOR, at);
    expect((await b.invoicing.load(`inv_${orderId.slice(4)}`)).status).toBe('void');
    const sub = await suite.api.plans.subscriptions.current(user.id);
    expect(sub).toMatchObject({ pastDue: null, disabled: null });
    // The plans scheduler expires it at the old expiry like any subscription that was not renewed.
    expect(await suite.api.plans.subscriptions.advance(user.id, new Date(expiresAt.getTime() + 1000))).toBe(true);
    expect((await suite.api.plans.subscriptions.current(user.id)).phase).toBe('expired');
  });
});
