/**
 * "A worker killed with SIGKILL mid-renewal leaves no duplicate charge and no
 * gap when it resumes" (the billing issue's "How it must behave"). Twenty
 * customers with a saved Stripe card and a plan expiring within the day; a
 * real `relaygrid fleet-worker` process renews them through the Stripe
 * provider over HTTP against the local fake of Stripe's API
 * (tests/support/fake-stripe.ts), whose answers to PaymentIntent creations
 * wait 300 ms, so the kill lands after some charges reached "Stripe" and
 * before the worker heard of them. A second worker finishes the job: the
 * orders its predecessor left unpaid are taken up again after
 * SETTLE_AFTER_MS, with the same attempt and so the same idempotency key.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { invoiceIdOf } from '../../producers/billing/invoice.decider.js';
import { renewalOrderId } from '../../producers/billing/renewals.js';
import { stripeToken } from '../../producers/billing/providers/stripe.js';
import { addLocalMonths } from '../../producers/plans/periods.js';
import { apiSuite } from '../support/api-suite.js';
import { CLI, sandboxEnv } from '../support/cli.js';
import { startFakeStripe } from '../support/fake-stripe.js';
import { eventually } from '../support/isolated.js';
import { readLog } from '../support/log.js';
import { createPlan } from '../support/plans.js';

const CUSTOMERS = 20;
const HOUR = 3_600_000;
const OPERATOR = { actor: 'operator:test' };

// Before the suite: its configuration names the fake's port.
const fake = await startFakeStripe();
const STRIPE_ENV = { RG_STRIPE_SECRET_KEY: fake.secretKey, RG_STRIPE_WEBHOOK_SECRET: 'whsec_relaygridtestsigningsecret0002', RG_STRIPE_API_BASE: fake.apiBase };

describe('billing: a fleet worker killed mid-renewal', () => {
  const suite = apiSuite({ env: STRIPE_ENV });
  const workers: ChildProcess[] = [];
  const output: string[] = [];

  afterAll(async () => {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
    await fake.close();
  });

  function startWorker(): ChildProcess {
    const env = sandboxEnv(suite.env.config, { ...STRIPE_ENV, RG_FLEET_WORKER_PORT: '0', LOG_LEVEL: 'warn' });
    const child = spawn(process.execPath, [CLI, 'fleet-worker'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
    child.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
    workers.push(child);
    return child;
  }

  /** A bought instant whose one-month expiry falls `ahead` from now (in UTC, the customers' zone): due for renewal now. */
  function boughtFor(ahead: number): { boughtAt: Date; expiresAt: Date } {
    const expiresAt = new Date(Date.now() + ahead);
    const boughtAt = new Date(expiresAt);
    boughtAt.setUTCMonth(boughtAt.getUTCMonth() - 1);
    expect(addLocalMonths(boughtAt, 1, 'UTC')).toEqual(expiresAt);
    return { boughtAt, expiresAt };
  }

  it('charges every customer once per renewal, fulfils every renewal, and numbers the invoices 1..n', async () => {
    const planId = await createPlan(suite.api.plans, { price: { amountMinor: 1299, currency: 'EUR' } });
    const billing = suite.api.billing;
    const customers: { userId: string; customer: string; orderId: string; expiresAt: Date }[] = [];
    for (let i = 0; i < CUSTOMERS; i++) {
      const user = await suite.signedIn();
      const suffix = `${i}x${randomUUID().slice(0, 8)}`;
      const customer = `cus_${suffix}`;
      fake.addCard({ id: `pm_${suffix}`, customer });
      await suite.api.paymentMethods.add(user.id, { provider: 'stripe', token: stripeToken(customer, `pm_${suffix}`) }, OPERATOR);
      // Bought a month ago (the clock passed in), expiring in the next few hours: the real scheduler finds it due.
      const { boughtAt, expiresAt } = boughtFor(2 * HOUR + i * 60_000);
      const { orderId } = await billing.checkout.checkout(user.id, randomUUID(), { planId }, OPERATOR, boughtAt);
      expect((await billing.payments.load(orderId)).status).toBe('fulfilled');
      customers.push({ userId: user.id, customer, orderId: renewalOrderId(user.id, expiresAt), expiresAt });
    }
    const renewalKeys = new Set(customers.map((c) => `${c.orderId}-1`));
    const renewalCharges = () => fake.created.filter((x) => x.idempotencyKey !== undefined && renewalKeys.has(x.idempotencyKey));
    // The subscriptions and their fulfilled orders are in the read models the scheduler's due query reads.
    await eventually(async () => (await billing.renewals.due(new Date(), 1000)).filter((i) => i.kind === 'renew').length === CUSTOMERS, 20_000);

    fake.delayIntents(300);
    const startedAt = Date.now();
    const first = startWorker();
    const killedAt = await eventually(() => renewalCharges().length >= 3 && Date.now(), 30_000, 10);
    first.kill('SIGKILL');
    await new Promise((resolve) => first.once('exit', resolve));
    const chargedBeforeKill = renewalCharges().length;
    const orders = await readLog(suite.env.rt, suite.env.rt.names.aggregateSubjects('billing', 'order'));
    const paidBeforeKill = new Set(orders.flatMap((e) => (e.type === 'billing.OrderPaid' && renewalKeys.has(`${e.data.orderId}-1`) ? [e.data.orderId] : [])));
    // Killed mid-renewal: charges reached Stripe that the log does not know were paid.
    expect(chargedBeforeKill).toBeGreaterThan(paidBeforeKill.size);

    const resumedAt = Date.now();
    startWorker();
    await eventually(
      async () => {
        const rows = await suite.env.rt.db.selectFrom('orders').select(['id', 'status']).where('id', 'in', customers.map((c) => c.orderId)).execute();
        return rows.length === CUSTOMERS && rows.every((r) => r.status === 'fulfilled');
      },
      90_000,
      250,
    ).catch((err: unknown) => {
      throw new Error(`not every renewal was fulfilled after the restart; worker output:\n${output.join('').slice(-4000)}`, { cause: err });
    });
    const finishedAt = Date.now();

    // No duplicate charge: one PaymentIntent per idempotency key, one succeeded renewal charge per customer.
    const keys = fake.created.map((x) => x.idempotencyKey);
    expect(new Set(keys).size).toBe(keys.length);
    for (const c of customers) {
      const charged = [...fake.intents.values()].filter((pi) => pi['customer'] === c.customer && pi['status'] === 'succeeded');
      expect(charged, `customer ${c.customer}: the purchase and one renewal`).toHaveLength(2);
      expect(fake.created.filter((x) => x.idempotencyKey?.startsWith(c.orderId))).toEqual([expect.objectContaining({ idempotencyKey: `${c.orderId}-1`, status: 'succeeded' })]);
    }

    // One invoice per renewal, paid; the subscription runs on to the renewal's end.
    const invoiceEvents = await readLog(suite.env.rt, suite.env.rt.names.aggregateSubjects('billing', 'invoice'));
    for (const c of customers) {
      const mine = invoiceEvents.filter((e) => (e.data as { orderId?: string }).orderId === c.orderId || (e.data as { invoiceId: string }).invoiceId === invoiceIdOf(c.orderId));
      expect(mine.filter((e) => e.type === 'billing.InvoiceDrafted').map((e) => (e.data as { invoiceId: string }).invoiceId)).toEqual([invoiceIdOf(c.orderId)]);
      expect(mine.filter((e) => e.type === 'billing.InvoiceFinalized')).toHaveLength(1);
      expect(mine.filter((e) => e.type === 'billing.InvoicePaid')).toHaveLength(1);
      const sub = await suite.api.plans.subscriptions.current(c.userId);
      expect(sub.expiresAt).toEqual(addLocalMonths(c.expiresAt, 1, 'UTC', c.expiresAt.getUTCDate()));
    }
    const paymentsPerOrder = (await readLog(suite.env.rt, suite.env.rt.names.aggregateSubjects('billing', 'order'))).filter((e) => e.type === 'billing.OrderPaid' && renewalKeys.has(`${e.data.orderId}-1`));
    expect(paymentsPerOrder).toHaveLength(CUSTOMERS);

    // No gap, no duplicate: the series holds the purchases and the renewals, numbered 1..2n.
    const finalized = invoiceEvents.flatMap((e) => (e.type === 'billing.InvoiceFinalized' ? [e.data] : []));
    const bySeries = new Map<string, number[]>();
    for (const f of finalized) bySeries.set(f.series, [...(bySeries.get(f.series) ?? []), f.sequence]);
    expect([...bySeries.values()].flat()).toHaveLength(2 * CUSTOMERS);
    for (const [series, sequences] of bySeries) expect(sequences.sort((a, b) => a - b), series).toEqual(sequences.map((_, i) => i + 1));
    expect(new Set(finalized.map((f) => f.number)).size).toBe(finalized.length);

    console.log(
      `billing sigkill: ${chargedBeforeKill} renewal charges had reached Stripe at the kill (${killedAt - startedAt} ms after the worker was started), ${paidBeforeKill.size} were recorded paid; ` +
        `the second worker finished all ${CUSTOMERS} in ${finishedAt - resumedAt} ms; ${fake.requests.filter((r) => r.replayed).length} Stripe requests were idempotent replays`,
    );
  }, 180_000);
});
