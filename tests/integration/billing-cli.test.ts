/**
 * `relaygrid billing` as an operator runs it, a real process against the
 * sandbox: a manual order placed at checkout is confirmed at the shell, shows
 * fulfilled with its numbered invoice, is refunded with a minted key and then
 * with a given one (each key refunds once however often it runs), and a bad
 * argument is one line naming it, exit 2, before anything connects.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.js';
import { apiSuite } from '../support/api-suite.js';
import { createPlan } from '../support/plans.js';

const CUSTOMER = { actor: 'user:test' };

interface Order {
  id: string;
  status: string;
  userId: string;
  invoiceId: string | null;
  refundedMinor: number;
}
interface Invoice {
  id: string;
  number: string;
  orderId: string;
  creditNotes: { number: string; amountMinor: number }[];
}

// Every step is a CLI process of its own (a second or more each on a busy machine): the file gets a longer timeout.
describe('relaygrid billing', { timeout: 90_000 }, () => {
  const suite = apiSuite();
  const cli = (...args: string[]) => runCli(suite.env.config, args);
  const json = async <T>(...args: string[]): Promise<T> => {
    const result = await cli(...args, '--json');
    expect(result.code, result.stderr).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  /** A manual order of a 9.99 EUR plan, placed by a new customer: pending until an operator confirms it. */
  const placeOrder = async () => {
    const planId = await createPlan(suite.api.plans, { price: { amountMinor: 999, currency: 'EUR' } });
    const { id: userId } = await suite.signedIn(['client']);
    const { orderId, state } = await suite.api.billing.checkout.checkout(userId, randomUUID(), { planId }, CUSTOMER);
    expect(state.status).toBe('pending');
    return { orderId, userId, planId };
  };

  it('confirms a manual payment at the shell: the order is fulfilled and its invoice listed', async () => {
    const { orderId, userId } = await placeOrder();
    const pending = await cli('billing', 'orders', '--user', userId, '--status', 'pending');
    expect(pending.code, pending.stderr).toBe(0);
    const [header, row] = pending.stdout.trim().split('\n');
    expect(header).toMatch(/^ID\s+STATUS\s+USER\s+PLAN\s+TOTAL/);
    expect(row).toMatch(new RegExp(`^${orderId}\\s+pending\\s+${userId}\\s+\\S+\\s+9\\.99 EUR`));

    const confirmed = await cli('billing', 'confirm', orderId, '--reference', 'SEPA-2026-4711');
    expect(confirmed.code, confirmed.stderr).toBe(0);
    expect(confirmed.stdout.trim()).toMatch(new RegExp(`^confirmed order ${orderId}: fulfilled, 9\\.99 EUR, invoice \\S+$`));
    // Again with the same reference: nothing changes, the answer is the same.
    expect((await cli('billing', 'confirm', orderId, '--reference', 'SEPA-2026-4711')).stdout).toBe(confirmed.stdout);

    const order = await json<Order>('billing', 'order', orderId);
    expect(order).toMatchObject({ id: orderId, status: 'fulfilled', userId });
    const invoices = await json<Invoice[]>('billing', 'invoices', '--user', userId);
    expect(invoices.map((i) => [i.id, i.orderId])).toEqual([[order.invoiceId, orderId]]);
    const number = invoices[0]!.number;
    expect(confirmed.stdout).toContain(`invoice ${number}`);
    const table = await cli('billing', 'invoices', '--number', number);
    expect(table.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^NUMBER\s+STATUS\s+ID\s+ORDER/), expect.stringMatching(new RegExp(`^${number}\\s+paid\\s+${order.invoiceId}\\s+${orderId}\\s`))]);
  });

  it('refunds once per key: a minted key is printed for the retry, a given key again refunds nothing more', async () => {
    const { orderId, userId } = await placeOrder();
    expect((await cli('billing', 'confirm', orderId, '--reference', 'TX-77')).code).toBe(0);

    const first = await cli('billing', 'refund', orderId, '--amount', '100', '--reason', 'goodwill');
    expect(first.code, first.stderr).toBe(0);
    const key = /^refund key: (\S+), run again with --key \1 to retry without refunding twice$/m.exec(first.stdout)?.[1];
    expect(key, first.stdout).toBeDefined();
    expect(first.stdout).toMatch(new RegExp(`^refunded order ${orderId}: fulfilled, 9\\.99 EUR, 1\\.00 EUR refunded, invoice \\S+$`, 'm'));
    expect(first.stdout).toMatch(/^credit note \S+: 1\.00 EUR$/m);
    const retried = await cli('billing', 'refund', orderId, '--amount', '100', '--reason', 'goodwill', '--key', key!);
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.stdout).not.toContain('refund key:');
    expect((await json<Order>('billing', 'order', orderId)).refundedMinor).toBe(100);

    for (let i = 0; i < 2; i++) expect((await cli('billing', 'refund', orderId, '--key', 'rest-of-it')).code).toBe(0);
    expect(await json<Order>('billing', 'order', orderId)).toMatchObject({ status: 'refunded', refundedMinor: 999 });
    const [invoice] = await json<Invoice[]>('billing', 'invoices', '--user', userId);
    expect(invoice!.creditNotes.map((n) => n.amountMinor)).toEqual([100, 899]);

    const again = await cli('billing', 'refund', orderId, '--key', 'one-too-many');
    expect([again.code, again.stderr.trim().split('\n').length]).toEqual([2, 1]);
    expect(again.stderr).toMatch(/^relaygrid: order_not_refundable: /);
  });

  it('an unknown order is one line with its code, exit 2', async () => {
    const result = await cli('billing', 'order', `ord_${'0'.repeat(32)}`);
    expect([result.code, result.stderr]).toEqual([2, 'relaygrid: order_not_found: no such order\n']);
  });

  it('a bad argument is one line naming it, exit 2, without connecting', async () => {
    const nowhere = { ...suite.env.config, natsUrl: 'nats://127.0.0.1:1', databaseUrl: 'postgres://postgres@127.0.0.1:1/none' };
    for (const [args, line] of [
      [['billing', 'confirm', `ord_${'a'.repeat(32)}`], 'relaygrid: --reference: missing (the transfer\'s or the transaction\'s reference)'],
      [['billing', 'refund', `ord_${'a'.repeat(32)}`, '--key', 'has space'], 'relaygrid: --key: 1-255 printable ASCII characters, no spaces'],
      [['billing', 'revenue', '--from', '2026-12-01', '--to', 'tomorrow'], 'relaygrid: --to: a local date, YYYY-MM-DD'],
      [['billing', 'invoices', '--status', 'overdue'], 'relaygrid: --status: one of draft, finalized, paid, void'],
    ] as const) {
      const result = await runCli(nowhere, args);
      expect([result.code, result.stderr], args.join(' ')).toEqual([2, `${line}\n`]);
    }
  });

  it('revenue over the days of the orders, as a table and as JSON', async () => {
    // Two days either side: today in the seller's zone is within, whatever zone that is.
    const to = new Date(Date.now() + 2 * 86_400_000).toISOString().slice(0, 10);
    const from = new Date(Date.now() - 2 * 86_400_000).toISOString().slice(0, 10);
    const revenue = await json<{ timeZone: string; days: { day: string; grossMinor: number }[] }>('billing', 'revenue', '--from', from, '--to', to);
    expect(revenue.days.reduce((sum, d) => sum + d.grossMinor, 0)).toBeGreaterThanOrEqual(2 * 999);
    const table = await cli('billing', 'revenue', '--from', from, '--to', to);
    expect(table.stdout.split('\n')[1]).toMatch(/^DAY\s+PLAN\s+ORDERS\s+GROSS\s+REFUNDED\s+NET$/);
  });
});
