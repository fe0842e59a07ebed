/**
 * The issue's property test ("How it must behave"), on the real log and read
 * models with the clock passed in: random sequences of checkouts (manual and
 * confirmed, a card that pays, a card that is declined), renewals (paid,
 * declined, left for a manual payment), dunning retries, late payments,
 * partial and full refunds and retried refunds, over a few customers and two
 * plans (one customer in four pays German VAT). After every sequence:
 *
 * A. paid invoices minus credit notes = payments minus refunds, on the log
 *    and on the read models; every paid order is fulfilled by one invoice;
 * B. every invoice is reproduced by folding its events up to its
 *    finalization, and equals both its read-model row and a fresh price() of
 *    what its order bought;
 * C. invoice and credit-note numbers are 1..n per series: no gap, no duplicate.
 *
 * fast-check is not installed (no new packages here): the generator is a
 * seeded PRNG (mulberry32). RG_PROPS_SEED=<n> replays a failing run; the seed
 * and the steps taken are in the failure message.
 */
import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../contracts/envelope.js';
import { Billing } from '../../producers/billing/billing.js';
import { invoiceDecider, invoiceIdOf, type InvoiceState } from '../../producers/billing/invoice.decider.js';
import type { OrderState } from '../../producers/billing/order.decider.js';
import { price, type Priced } from '../../producers/billing/pricing.js';
import type { ChargeRequest, ChargeResult, PaymentProvider, RefundRequest } from '../../producers/billing/providers/provider.js';
import { ManualProvider, ProviderRegistry } from '../../producers/billing/providers/manual.js';
import { renewalOrderId, type BillingDue } from '../../producers/billing/renewals.js';
import { apiSuite } from '../support/api-suite.js';
import { eventually } from '../support/isolated.js';
import { readLog } from '../support/log.js';
import { createPlan } from '../support/plans.js';

const OPERATOR = { actor: 'operator:test' };
const HOUR = 3_600_000;
const RUNS = Number(process.env['RG_PROPS_RUNS'] ?? 15);
const MAX_STEPS = 12;
const TAX_RATES = new Map([['DE', 1900]]);

/** mulberry32: a small seeded PRNG, so a failing sequence can be run again from its seed. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
  const int = (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1));
  return { int, pick: <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]! };
}

/** A card that pays. */
class SucceedingProvider implements PaymentProvider {
  readonly name = 'succeeding';
  charge(request: ChargeRequest): Promise<ChargeResult> {
    return Promise.resolve({ status: 'succeeded', providerRef: `pi_${request.idempotencyKey}` });
  }
  refund(request: RefundRequest): Promise<{ providerRef: string }> {
    return Promise.resolve({ providerRef: `re_${request.idempotencyKey}` });
  }
}

/** A card with no funds: every charge declined, worth retrying. */
class DecliningProvider implements PaymentProvider {
  readonly name = 'declining';
  charge(request: ChargeRequest): Promise<ChargeResult> {
    return Promise.resolve({ status: 'failed', providerRef: `pi_${request.idempotencyKey}`, reason: 'insufficient_funds', retryable: true });
  }
  refund(request: RefundRequest): Promise<{ providerRef: string }> {
    return Promise.resolve({ providerRef: `re_${request.idempotencyKey}` });
  }
}

const METHODS = { ok: { paymentMethodId: 'pm-ok', provider: 'succeeding', token: 'tok-ok' }, bad: { paymentMethodId: 'pm-bad', provider: 'declining', token: 'tok-bad' } } as const;
type Card = keyof typeof METHODS | 'manual';

interface Customer {
  id: string;
  planId: string;
  country: 'DE' | 'US';
  /** This customer's clock (ms): each timeline moves forward on its own. */
  t: number;
  orders: string[];
  refunds: { orderId: string; key: string; amountMinor?: number }[];
}

const sumBig = (xs: bigint[]) => xs.reduce((a, b) => a + b, 0n);
const lineJson = (p: Priced) => p.lines.map((l) => ({ ...l, unitAmountMinor: Number(l.unitAmountMinor), amountMinor: Number(l.amountMinor) }));

describe('billing properties over random sequences', () => {
  const suite = apiSuite();
  const plans: { planId: string; amountMinor: bigint }[] = [];
  /** Each user's default payment method (what a renewal charges); absent: manual. */
  const defaults = new Map<string, Card>();
  const countries = new Map<string, string>();
  let b: Billing;
  /** The step being taken (or the final check), for the failure message. */
  let trying = '';

  const setup = async () => {
    for (const amountMinor of [999n, 1450n]) plans.push({ planId: await createPlan(suite.api.plans, { price: { amountMinor: Number(amountMinor), currency: 'EUR' } }), amountMinor });
    b = new Billing({
      handler: suite.api.billing.deps.handler,
      db: suite.env.rt.db,
      plans: suite.api.plans,
      providers: new ProviderRegistry([new ManualProvider(), new SucceedingProvider(), new DecliningProvider()]),
      methods: {
        resolve: (userId, id) => {
          const card = id === null ? (defaults.get(userId) ?? 'manual') : id === 'pm-ok' ? 'ok' : id === 'pm-bad' ? 'bad' : null;
          return Promise.resolve(card === null || card === 'manual' ? null : METHODS[card]);
        },
      },
      coupons: null,
      taxRates: TAX_RATES,
      timeZone: 'UTC',
    });
  };

  /** The scheduler's items at `now` that `which` picks, once the read models show them. */
  const dueItems = (now: Date, which: (item: BillingDue) => boolean, what: string) =>
    eventually(async () => {
      const due = (await b.renewals.due(now, 1000)).filter(which);
      return due.length > 0 ? due : undefined;
    }).catch((err: unknown) => {
      throw new Error(`never due: ${what}`, { cause: err });
    });

  /** The money for a renewal arrives late: an operator confirms a transfer, or the card's provider reports it. */
  const payLate = (orderId: string, s: OrderState, now: Date) => {
    const order = s.order!;
    if (order.provider === 'manual') return b.payments.confirm(orderId, { reference: `LATE-${orderId.slice(-8)}` }, OPERATOR, now);
    return b.payments.recordPayment(orderId, { provider: order.provider, providerRef: `late-${orderId}`, amount: { amountMinor: order.priced.totalMinor, currency: order.priced.currency } }, OPERATOR, now);
  };

  /** One random step for one customer; answers what it did (for the failure message), or null when it did not apply. */
  async function step(r: ReturnType<typeof prng>, c: Customer): Promise<string | null> {
    c.t += r.int(1, 6) * HOUR;
    const at = () => new Date(c.t);
    const states = await Promise.all(c.orders.map(async (id) => [id, await b.payments.load(id)] as const));
    const sub = await suite.api.plans.subscriptions.current(c.id);
    const expiry = sub.phase === 'running' && sub.planId === c.planId ? sub.expiresAt : null;
    // Renewed: a subscription whose last order is fulfilled up to its expiry (a fully refunded one is not), once per expiry.
    const paidUpTo = states.some(([, s]) => s.status === 'fulfilled' && s.fulfilled?.periodEnd.getTime() === expiry?.getTime());
    const renewable = expiry && paidUpTo && !(await b.payments.load(renewalOrderId(c.id, expiry))).order;
    const unpaidRenewals = states.filter(([, s]) => s.order?.kind === 'renewal' && (s.status === 'pending' || s.status === 'failed'));
    const retries = unpaidRenewals.filter(([, s]) => s.status === 'pending' && s.nextAttemptAt);
    const superseded = states.filter(([, s]) => s.order?.kind === 'renewal' && s.status === 'cancelled');
    const refundable = states.filter(([, s]) => s.status === 'fulfilled' && s.order && s.refundedMinor < s.order.priced.totalMinor);
    // Weighted so that renewals, dunning and refunds are not drowned by checkouts (always possible).
    const kinds = [
      ...Array<string>(2).fill('manual'),
      ...Array<string>(2).fill('card-ok'),
      'card-declined',
      ...(renewable ? Array<string>(4).fill('renew') : []),
      ...(retries.length ? Array<string>(6).fill('retry') : []),
      ...(unpaidRenewals.length ? Array<string>(2).fill('late-payment') : []),
      ...(superseded.length ? ['pay-superseded'] : []),
      ...(refundable.length ? Array<string>(3).fill('refund') : []),
      ...(c.refunds.length ? ['refund-again'] : []),
    ];
    const kind = r.pick(kinds);
    trying = `${c.id.slice(-6)} ${kind}`;
    switch (kind) {
      case 'manual':
      case 'card-ok':
      case 'card-declined': {
        const method = kind === 'manual' ? null : kind === 'card-ok' ? 'pm-ok' : 'pm-bad';
        if (kind === 'manual') defaults.delete(c.id);
        const months = r.int(1, 2);
        const { orderId, state } = await b.checkout.checkout(c.id, randomUUID(), { planId: c.planId, months, country: c.country, paymentMethodId: method }, { actor: `user:${c.id}` }, at());
        c.orders.push(orderId);
        if (kind === 'manual') await b.payments.confirm(orderId, { reference: `REF-${orderId.slice(-8)}` }, OPERATOR, at());
        else expect(state.status).toBe(kind === 'card-ok' ? 'fulfilled' : 'failed');
        return `${kind} ${months}m ${orderId}`;
      }
      case 'renew': {
        const card = r.pick(['ok', 'bad', 'bad', 'manual'] as const);
        defaults.set(c.id, card);
        c.t = Math.max(c.t, expiry!.getTime() - 20 * HOUR);
        const items = await dueItems(at(), (i) => i.kind === 'renew' && i.userId === c.id, `renewal of ${c.id} at ${expiry!.toISOString()}`);
        for (const item of items) await b.renewals.fire(item, at());
        const orderId = renewalOrderId(c.id, expiry!);
        c.orders.push(orderId);
        return `renew(${card}) ${orderId}`;
      }
      case 'retry': {
        const [orderId, s] = r.pick(retries);
        c.t = Math.max(c.t, s.nextAttemptAt!.getTime());
        const items = await dueItems(at(), (i) => i.kind === 'retry' && i.orderId === orderId, `retry of ${orderId}`);
        for (const item of items) await b.renewals.fire(item, at());
        return `retry #${s.attempts + 1} ${orderId}`;
      }
      case 'late-payment': {
        const [orderId, s] = r.pick(unpaidRenewals);
        await payLate(orderId, s, at());
        return `late-payment ${orderId}`;
      }
      case 'pay-superseded': {
        // A renewal another order replaced is cancelled, its invoice void: money for it is refused, not left unfulfilled.
        const [orderId, s] = r.pick(superseded);
        await expect(payLate(orderId, s, at())).rejects.toMatchObject({ code: 'order_cancelled' });
        expect((await b.invoicing.load(invoiceIdOf(orderId))).status).toBe('void');
        return `pay-superseded ${orderId}`;
      }
      case 'refund': {
        const [orderId, s] = r.pick(refundable);
        const left = Number(s.order!.priced.totalMinor - s.refundedMinor);
        const partial = left > 1 && r.int(0, 1) === 1;
        const refund = { orderId, key: randomUUID(), ...(partial ? { amountMinor: r.int(1, left - 1) } : {}) };
        const after = await b.refunds.refund(orderId, refund.key, { amountMinor: refund.amountMinor, reason: 'property test' }, OPERATOR, at());
        expect(after.refundedMinor).toBe(s.refundedMinor + BigInt(refund.amountMinor ?? left));
        c.refunds.push(refund);
        return `refund ${refund.amountMinor ?? `all (${left})`} ${orderId}`;
      }
      case 'refund-again': {
        const refund = r.pick(c.refunds);
        const before = await b.payments.load(refund.orderId);
        const after = await b.refunds.refund(refund.orderId, refund.key, { amountMinor: refund.amountMinor, reason: 'property test' }, OPERATOR, at());
        expect(after.refundedMinor).toBe(before.refundedMinor);
        expect(after.creditNotes).toEqual(before.creditNotes);
        return `refund-again ${refund.key} ${refund.orderId}`;
      }
    }
    return null;
  }

  /** Each invoice's events, in log order. */
  const byInvoice = (events: StoredEvent[]) => {
    const out = new Map<string, StoredEvent[]>();
    for (const e of events) {
      const id = (e.data as { invoiceId: string }).invoiceId;
      out.set(id, [...(out.get(id) ?? []), e]);
    }
    return out;
  };
  const fold = (events: StoredEvent[]) => events.reduce<InvoiceState>((s, e) => invoiceDecider.evolve(s, e as Parameters<typeof invoiceDecider.evolve>[1]), invoiceDecider.initialState);

  async function checkProperties(): Promise<void> {
    const rt = suite.env.rt;
    const orderEvents = await readLog(rt, rt.names.aggregateSubjects('billing', 'order'));
    const invoiceEvents = await readLog(rt, rt.names.aggregateSubjects('billing', 'invoice'));
    const invoices = byInvoice(invoiceEvents);
    const placed = new Map(orderEvents.flatMap((e) => (e.type === 'billing.OrderPlaced' ? [[e.data.orderId, e.data] as const] : [])));
    const paidOrders = orderEvents.flatMap((e) => (e.type === 'billing.OrderPaid' ? [e.data] : []));
    const refunded = orderEvents.flatMap((e) => (e.type === 'billing.OrderRefunded' ? [e.data] : []));
    const cancelled = new Set(orderEvents.flatMap((e) => (e.type === 'billing.OrderCancelled' ? [e.data.orderId] : [])));
    const fulfilled = new Set(orderEvents.flatMap((e) => (e.type === 'billing.OrderFulfilled' ? [e.data.orderId] : [])));
    const states = new Map([...invoices].map(([id, events]) => [id, fold(events)]));

    // A: money in equals money invoiced, on the log.
    const payments = sumBig(paidOrders.map((p) => p.amountMinor)) - sumBig(refunded.map((p) => p.amountMinor));
    const paidInvoices = [...states.values()].filter((s) => s.status === 'paid');
    const credited = sumBig(invoiceEvents.flatMap((e) => (e.type === 'billing.CreditNoteIssued' ? [e.data.amountMinor] : [])));
    expect(sumBig(paidInvoices.map((s) => s.draft!.priced.totalMinor)) - credited, 'paid invoices − credit notes = payments − refunds (log)').toBe(payments);
    // …order by order: a paid order is fulfilled, by its own paid invoice; a purchase never paid has no invoice.
    for (const paid of paidOrders) expect(fulfilled.has(paid.orderId), `paid order ${paid.orderId} is fulfilled`).toBe(true);
    const invoicedOrders = [...states.values()].map((s) => s.draft!.orderId);
    expect(new Set(invoicedOrders).size, 'one invoice per order').toBe(invoicedOrders.length);
    const paidIds = new Set(paidOrders.map((p) => p.orderId));
    for (const s of states.values()) {
      const order = placed.get(s.draft!.orderId)!;
      if (order.kind !== 'renewal') expect(paidIds.has(order.orderId), `the purchase ${order.orderId} was invoiced only once paid`).toBe(true);
      if (paidIds.has(order.orderId)) expect(s.status, `invoice of paid order ${order.orderId}`).toBe('paid');
      if (s.status === 'void') expect(cancelled.has(order.orderId), `void invoice ${s.draft!.invoiceId} of a cancelled order`).toBe(true);
      const refundedHere = sumBig(refunded.filter((x) => x.orderId === order.orderId).map((x) => x.amountMinor));
      expect(s.creditedMinor, `credit notes of ${s.draft!.invoiceId} = its order's refunds`).toBe(refundedHere);
    }

    // C: numbers 1..n per series, for invoices and credit notes.
    const series = new Map<string, { sequence: number; number: string }[]>();
    for (const e of invoiceEvents) {
      if (e.type !== 'billing.InvoiceFinalized' && e.type !== 'billing.CreditNoteIssued') continue;
      series.set(e.data.series, [...(series.get(e.data.series) ?? []), { sequence: e.data.sequence, number: e.data.number }]);
    }
    for (const [name, docs] of series) {
      expect(docs.map((d) => d.sequence).sort((x, y) => x - y), `series ${name}`).toEqual(docs.map((_, i) => i + 1));
      expect(new Set(docs.map((d) => d.number)).size, `numbers of ${name} are unique`).toBe(docs.length);
    }

    // …and on the read models, once they caught up.
    const db = rt.db;
    let seen = '';
    await eventually(
      async () => {
        const inv = await db.selectFrom('invoices').select((eb) => [eb.fn.sum<string>('total_minor').as('t')]).where('status', '=', 'paid').executeTakeFirst();
        const cn = await db.selectFrom('credit_notes').select((eb) => [eb.fn.sum<string>('amount_minor').as('t')]).executeTakeFirst();
        const ord = await db.selectFrom('orders').select((eb) => [eb.fn.sum<string>('total_minor').as('t'), eb.fn.sum<string>('refunded_minor').as('r')]).where('paid_at', 'is not', null).executeTakeFirst();
        const viaInvoices = BigInt(inv?.t ?? 0) - BigInt(cn?.t ?? 0);
        const viaOrders = BigInt(ord?.t ?? 0) - BigInt(ord?.r ?? 0);
        seen = `invoices − credit notes ${viaInvoices}, orders paid − refunded ${viaOrders}`;
        return viaInvoices === payments && viaOrders === payments;
      },
      10_000,
    ).catch(async () => {
      // A projector that failed on an event stops there: name it.
      const failures = await db.selectFrom('projector_failures').select(['projector', 'event_type', 'error']).where('resolved_at', 'is', null).execute();
      throw new Error(`read models never showed paid invoices − credit notes = payments − refunds = ${payments} (the log); they show ${seen}; open projector failures: ${JSON.stringify(failures)}`);
    });

    // B: every invoice, replayed to its finalization, is its read-model row and the price of what was bought.
    const rows = await eventually(async () => {
      const byId = new Map((await db.selectFrom('invoices').selectAll().execute()).map((row) => [row.id, row]));
      // The row's last_seq is that of the last event it shows (a payment failure is not shown).
      const shown = (events: StoredEvent[]) => Math.max(...events.filter((e) => e.type !== 'billing.InvoicePaymentFailed').map((e) => e.seq));
      return [...invoices].every(([id, events]) => Number(byId.get(id)?.last_seq ?? -1) >= shown(events)) && byId;
    }).catch((err: unknown) => {
      throw new Error('the invoices read model never caught up with the log', { cause: err });
    });
    for (const [id, events] of invoices) {
      const upTo = events.findIndex((e) => e.type === 'billing.InvoiceFinalized');
      expect(upTo, `invoice ${id} is finalized`).toBeGreaterThanOrEqual(0);
      const replayed = fold(events.slice(0, upTo + 1));
      const draft = replayed.draft!;
      expect(draft.priced).toEqual(states.get(id)!.draft!.priced);
      const row = rows.get(id);
      expect(row, `read model row of ${id}`).toBeDefined();
      expect({ lines: row!.lines, subtotal: row!.subtotal_minor, tax: row!.tax_minor, total: row!.total_minor, rate: row!.tax_rate_bp, country: row!.tax_country, currency: row!.currency, number: row!.number, series: row!.series, sequence: row!.sequence }).toEqual({
        lines: lineJson(draft.priced),
        subtotal: Number(draft.priced.subtotalMinor),
        tax: Number(draft.priced.taxMinor),
        total: Number(draft.priced.totalMinor),
        rate: draft.priced.taxRateBasisPoints,
        country: draft.priced.taxCountry,
        currency: draft.priced.currency,
        number: replayed.number!.number,
        series: replayed.number!.series,
        sequence: replayed.number!.sequence,
      });
      const order = placed.get(draft.orderId)!;
      const plan = plans.find((p) => p.planId === order.planId)!;
      const country = countries.get(order.userId)!;
      const fresh = price({ plan: { planId: plan.planId, name: plan.planId, price: { amountMinor: plan.amountMinor, currency: 'EUR' } }, months: order.months, tax: { country, rateBasisPoints: TAX_RATES.get(country) ?? 0 } });
      expect(draft.priced, `invoice ${id} = a fresh price of order ${order.orderId}`).toEqual(fresh);
    }

  }

  beforeAll(setup);

  it(`${RUNS} random sequences of up to ${MAX_STEPS} steps keep A, B and C`, async () => {
    const base = Number(process.env['RG_PROPS_SEED'] ?? Date.now() % 1_000_000_000);
    const timings: string[] = [];
    const kinds = new Map<string, number>();
    for (let run = 0; run < RUNS; run++) {
      const seed = base + run;
      const r = prng(seed);
      const started = Date.now();
      const trace: string[] = [];
      trying = 'setup';
      try {
        const customers: Customer[] = [];
        for (let i = r.int(2, 3); i > 0; i--) {
          const user = await suite.signedIn();
          const country = r.int(0, 3) === 0 ? 'DE' : 'US';
          countries.set(user.id, country);
          customers.push({ id: user.id, planId: r.pick(plans).planId, country, t: Date.UTC(2027, r.int(0, 11), r.int(1, 28), r.int(0, 23)), orders: [], refunds: [] });
        }
        const steps = r.int(4, MAX_STEPS);
        while (trace.length < steps) {
          const c = r.pick(customers);
          const did = await step(r, c);
          if (did) {
            trace.push(`${c.id.slice(-6)} ${did}`);
            const kind = did.split(/[ (]/)[0]!;
            kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
          }
        }
        trying = 'the properties after the last step';
        await checkProperties();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        throw new Error(`seed ${seed} (RG_PROPS_SEED=${seed} RG_PROPS_RUNS=1), steps:\n  ${trace.join('\n  ')}\nfailed in: ${trying}\n${message}`, { cause: err });
      }
      timings.push(`seed ${seed}: ${trace.length} steps, ${Date.now() - started} ms`);
    }
    console.log(`billing properties: base seed ${base}\n${timings.join('\n')}\nsteps taken: ${[...kinds].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  }, Math.max(120_000, RUNS * 4000));

  /** A customer who bought a month with the card that pays, and whose renewal the declining card then failed. */
  async function declinedRenewal() {
    const user = await suite.signedIn();
    countries.set(user.id, 'DE');
    const c: Customer = { id: user.id, planId: plans[0]!.planId, country: 'DE', t: Date.UTC(2027, 6, 10, 9), orders: [], refunds: [] };
    const buy = async (paymentMethodId: string | null, at: Date) => {
      const { orderId } = await b.checkout.checkout(c.id, randomUUID(), { planId: c.planId, country: c.country, paymentMethodId }, OPERATOR, at);
      c.orders.push(orderId);
      return orderId;
    };
    await buy('pm-ok', new Date(c.t));
    const expiry = (await suite.api.plans.subscriptions.current(c.id)).expiresAt!;
    defaults.set(c.id, 'bad');
    const renewedAt = new Date(expiry.getTime() - 20 * HOUR);
    for (const item of await dueItems(renewedAt, (i) => i.kind === 'renew' && i.userId === c.id, 'the renewal')) await b.renewals.fire(item, renewedAt);
    const renewal = renewalOrderId(c.id, expiry);
    expect(await b.payments.load(renewal)).toMatchObject({ status: 'pending', attempts: 1 });
    return { c, buy, expiry, renewal, renewedAt };
  }

  /** The renewal another order replaced: cancelled, its invoice void, nothing left to retry, its money refused rather than kept unfulfilled. */
  async function expectSuperseded(renewal: string, at: Date) {
    const superseded = await b.payments.load(renewal);
    expect(superseded.status).toBe('cancelled');
    expect((await b.invoicing.load(invoiceIdOf(renewal))).status).toBe('void');
    await eventually(async () => (await b.queries.order(renewal)).status === 'cancelled');
    const retries = (await b.renewals.due(new Date(at.getTime() + 6 * 86_400_000), 1000)).filter((i) => i.kind === 'retry' && i.orderId === renewal);
    expect(retries).toEqual([]);
    await expect(payLate(renewal, superseded, at)).rejects.toMatchObject({ code: 'order_cancelled' });
    await checkProperties();
  }

  // Found by the random runs (seeds 658974453 and 660580713, before the step weights changed): the renewal's money arrived after another order had paid for the customer's months, and the order stayed paid, never fulfilled (plans refused the extension).
  it('a checkout that extends past a declined renewal supersedes it: no more dunning, its late payment refused, the properties hold', async () => {
    const { c, buy, renewal, renewedAt } = await declinedRenewal();
    // The customer pays by transfer instead: two more months from the old expiry, the past-due mark lifted.
    defaults.delete(c.id);
    const transfer = await buy(null, new Date(renewedAt.getTime() + HOUR));
    await b.payments.confirm(transfer, { reference: 'TRANSFER-1' }, OPERATOR, new Date(renewedAt.getTime() + 2 * HOUR));
    expect(await suite.api.plans.subscriptions.current(c.id)).toMatchObject({ pastDue: null, extendedBy: [transfer] });
    await expectSuperseded(renewal, new Date(renewedAt.getTime() + 3 * HOUR));
  });

  it('a checkout after the expiry of a declined renewal starts the plan again and supersedes the renewal too', async () => {
    const { c, buy, expiry, renewal } = await declinedRenewal();
    const later = new Date(expiry.getTime() + 3 * 86_400_000);
    const fresh = await buy('pm-ok', later);
    expect(await suite.api.plans.subscriptions.current(c.id)).toMatchObject({ pastDue: null, requestId: fresh, startsAt: later });
    await expectSuperseded(renewal, new Date(later.getTime() + HOUR));
  });
});
