/**
 * Billing end to end over HTTP with the manual provider: a quote, a checkout
 * under an idempotency key, an operator's confirmation, the invoice it issues
 * (numbered, paid, as a PDF), the subscription it starts and extends, a
 * refund as a credit note, revenue; and the concurrency the issue names: 50
 * checkouts with one key make one order, 50 with distinct keys 50 invoices
 * numbered without a gap.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { addLocalMonths } from '../../producers/plans/periods.js';
import { apiSuite, expectStatus } from '../support/api-suite.js';
import { eventually } from '../support/isolated.js';
import { readLog } from '../support/log.js';
import { createPlan } from '../support/plans.js';

const run = promisify(execFile);

interface Order {
  id: string;
  status: string;
  totalMinor: number;
  subtotalMinor: number;
  taxMinor: number;
  lines: { kind: string; description: string; quantity: number; unitAmountMinor: number; amountMinor: number }[];
  instructions: string | null;
  invoiceId: string | null;
  periodStart: string | null;
  periodEnd: string | null;
  refundedMinor: number;
  sequence: number;
}
interface Invoice {
  id: string;
  number: string | null;
  status: string;
  totalMinor: number;
  orderId: string;
  periodStart: string;
  periodEnd: string;
  creditNotes: { id: string; number: string; amountMinor: number }[];
}

describe('billing: quote, checkout, confirmation, invoices', () => {
  const suite = apiSuite({ env: { RG_TAX_RATES: 'DE=19,FR=20' } });
  const year = new Date().getUTCFullYear();
  const priced = async () => createPlan(suite.api.plans, { price: { amountMinor: 999, currency: 'EUR' } });
  const checkout = (token: string, key: string | null, body: Record<string, unknown>) =>
    suite.call<Order>('POST', '/v1/billing/checkout', { token, body, ...(key ? { headers: { 'idempotency-key': key } } : {}) });
  const confirm = async (orderId: string, reference: string) => {
    const admin = (await suite.signedIn(['admin'])).token;
    return suite.call<Order>('POST', `/v1/admin/billing/orders/${orderId}/confirm`, { token: admin, body: { reference } });
  };

  it('quotes the itemised price with the coupon and the country’s tax, and changes nothing', async () => {
    const planId = await priced();
    const admin = (await suite.signedIn(['admin'])).token;
    const code = `Q-${uuidv7().slice(-8)}`.toUpperCase();
    expectStatus(await suite.call('POST', '/v1/admin/billing/coupons', { token: admin, body: { code, kind: 'percent', percentOff: 20 } }), 201);
    const user = await suite.signedIn();
    const messages = async () => (await suite.env.rt.nats.jsm.streams.info(suite.env.rt.names.stream('billing'))).state.messages;
    const before = await messages();
    const quote = expectStatus(await suite.call<Order>('POST', '/v1/billing/quote', { token: user.token, body: { planId, months: 3, coupon: code.toLowerCase(), country: 'DE' } }), 200).body;
    // 3 × 9.99 = 29.97; 20% off = 5.99 (5.994 rounded); 23.98 + 19% = 4.56 (4.5562 rounded) → 28.54
    expect(quote).toMatchObject({ currency: 'EUR', subtotalMinor: 2398, taxRateBasisPoints: 1900, taxCountry: 'DE', taxMinor: 456, totalMinor: 2854 });
    expect(quote.lines).toEqual([
      { kind: 'plan', description: `${planId}, 3 months`, quantity: 3, unitAmountMinor: 999, amountMinor: 2997 },
      { kind: 'discount', description: `Coupon ${code} (20%)`, quantity: 1, unitAmountMinor: -599, amountMinor: -599 },
    ]);
    expect(expectStatus(await suite.call('POST', '/v1/billing/quote', { token: user.token, body: { planId } }), 400).body).toMatchObject({ code: 'invalid_quote', field: 'country' });
    expect(expectStatus(await suite.call('POST', '/v1/billing/quote', { token: user.token, body: { planId, country: 'DE', coupon: 'NOPE-NOPE' } }), 404).body).toMatchObject({ code: 'coupon_not_found' });
    expect(expectStatus(await suite.call('POST', '/v1/billing/quote', { token: user.token, body: { planId: 'no-such-plan', country: 'DE' } }), 404).body).toMatchObject({ code: 'plan_not_found' });
    // A quote places nothing and holds no coupon use: the billing stream did not move.
    expect(await messages()).toBe(before);
  });

  it('checks out once per key: the same key answers the same order, another body under it is refused, no key is refused', async () => {
    const planId = await priced();
    const user = await suite.signedIn();
    const key = uuidv7();
    const first = expectStatus(await checkout(user.token, key, { planId, country: 'US' }), 201);
    expect(first.body).toMatchObject({ status: 'pending', totalMinor: 999, taxMinor: 0, provider: 'manual', attempts: 1, invoiceId: null });
    expect(first.body.instructions).toContain('reference');
    const again = expectStatus(await checkout(user.token, key, { planId, country: 'US' }), 201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.id).toBe(first.body.id);
    expect(expectStatus(await checkout(user.token, key, { planId, months: 2, country: 'US' }), 422).body).toMatchObject({ code: 'idempotency_key_reused' });
    expect(expectStatus(await checkout(user.token, null, { planId, country: 'US' }), 400).body).toMatchObject({ code: 'idempotency_key_required', field: 'Idempotency-Key' });
    const placed = (await readLog(suite.env.rt, suite.env.rt.names.aggregate('billing', 'order', first.body.id))).map((e) => e.type);
    expect(placed).toEqual(['billing.OrderPlaced', 'billing.OrderPaymentPending']);
  });

  it('an operator confirms a manual payment: the order is paid, invoiced with a number, and the subscription runs for the months paid', async () => {
    const planId = await priced();
    const user = await suite.signedIn();
    const order = expectStatus(await checkout(user.token, uuidv7(), { planId, months: 2, country: 'FR' }), 201).body;
    const confirmed = expectStatus(await confirm(order.id, 'SEPA-2026-0001'), 200).body;
    expect(confirmed).toMatchObject({ id: order.id, status: 'fulfilled', totalMinor: 2398 });
    expect(confirmed.invoiceId).toMatch(/^inv_/);
    // Confirming again with the same reference changes nothing; another reference is a second payment, refused.
    expectStatus(await confirm(order.id, 'SEPA-2026-0001'), 200);
    expect(expectStatus(await confirm(order.id, 'SEPA-OTHER'), 409).body).toMatchObject({ code: 'order_already_paid' });

    // The confirmation answers once the invoice is readable too.
    const invoice = expectStatus(await suite.call<Invoice>('GET', `/v1/billing/invoices/${confirmed.invoiceId}`, { token: user.token }), 200).body;
    expect(invoice).toMatchObject({ status: 'paid', orderId: order.id, totalMinor: 2398, taxRateBasisPoints: 2000, taxCountry: 'FR' });
    expect(invoice.number).toMatch(new RegExp(`^${year}-EUR-\\d{6}$`));
    const start = new Date(invoice.periodStart);
    expect(invoice.periodEnd).toBe(addLocalMonths(start, 2, 'UTC').toISOString());

    const sub = (await suite.api.plans.subscriptions.current(user.id));
    expect(sub).toMatchObject({ planId, phase: 'running', requestId: order.id });
    expect(sub.expiresAt?.toISOString()).toBe(invoice.periodEnd);

    // A second order of the same plan extends it from the expiry: the months follow on.
    const more = expectStatus(await checkout(user.token, uuidv7(), { planId, months: 1, country: 'FR' }), 201).body;
    const extended = expectStatus(await confirm(more.id, 'SEPA-2026-0002'), 200).body;
    expect(extended.periodStart).toBe(invoice.periodEnd);
    const after = await suite.api.plans.subscriptions.current(user.id);
    expect(after.expiresAt?.toISOString()).toBe(extended.periodEnd);
    expect(after.extendedBy).toEqual([more.id]);

    const listed = expectStatus(await suite.call<{ invoices: Invoice[] }>('GET', '/v1/billing/invoices', { token: user.token }), 200).body.invoices;
    expect(listed.map((i) => i.orderId).sort()).toEqual([order.id, more.id].sort());
  });

  it("refuses another user's order and invoice ids exactly like unknown ones", async () => {
    const planId = await priced();
    const owner = await suite.signedIn();
    const other = await suite.signedIn();
    const order = expectStatus(await checkout(owner.token, uuidv7(), { planId, country: 'US' }), 201).body;
    const paid = expectStatus(await confirm(order.id, 'REF-1'), 200).body;
    for (const path of [`/v1/billing/orders/${order.id}`, `/v1/billing/invoices/${paid.invoiceId}`, `/v1/billing/invoices/${paid.invoiceId}/pdf`]) {
      const theirs = expectStatus(await suite.call('GET', path, { token: other.token }), 404).body;
      const unknown = expectStatus(await suite.call('GET', path.replace(/[0-9a-f]{32}/, '0'.repeat(32)), { token: other.token }), 404).body;
      expect(theirs).toEqual(unknown);
    }
    expect(expectStatus(await suite.call<{ orders: Order[] }>('GET', '/v1/billing/orders', { token: other.token }), 200).body.orders).toEqual([]);
  });

  it('answers the invoice as a PDF that pdftotext reads back with its number, lines and total', async () => {
    const planId = await priced();
    const user = await suite.signedIn();
    const order = expectStatus(await checkout(user.token, uuidv7(), { planId, months: 3, country: 'DE' }), 201).body;
    const paid = expectStatus(await confirm(order.id, 'REF-PDF'), 200).body;
    const invoice = expectStatus(await suite.call<Invoice>('GET', `/v1/billing/invoices/${paid.invoiceId}`, { token: user.token }), 200).body;
    const res = await fetch(`${suite.api.url}/v1/billing/invoices/${paid.invoiceId}/pdf`, { headers: { authorization: `Bearer ${user.token}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/pdf');
    const dir = await mkdtemp(join(tmpdir(), 'rg-invoice-'));
    try {
      await writeFile(join(dir, 'invoice.pdf'), Buffer.from(await res.arrayBuffer()));
      const { stdout } = await run('pdftotext', ['-layout', join(dir, 'invoice.pdf'), '-']);
      expect(stdout).toContain(`Invoice ${invoice.number}`);
      // A long description wraps ("…, 3" / "months"); quantity, unit and amount stand on its first line.
      expect(stdout).toMatch(new RegExp(`${planId}, 3( months)?\\s+3\\s+9\\.99 EUR\\s+29\\.97 EUR`));
      expect(stdout).toMatch(/Total\s+35\.66 EUR/);
      expect(stdout).toContain(`Account ${user.id}`);

      // Forgotten, the person's name leaves the invoice; its number and amounts stay (legal retention).
      await suite.api.identity.accounts.forget(user.id, { actor: 'operator:test' });
      const admin = (await suite.signedIn(['admin'])).token;
      await eventually(async () => (await suite.api.billing.queries.billedTo(user.id)).lines[0] === '(personal data erased)');
      const kept = expectStatus(await suite.call<{ invoices: Invoice[] }>('GET', `/v1/admin/billing/invoices?userId=${user.id}`, { token: admin }), 200).body.invoices;
      expect(kept).toEqual([expect.objectContaining({ number: invoice.number, totalMinor: 3566, status: 'paid' })]);
      const erased = await suite.api.billing.queries.billedTo(user.id);
      expect(erased.lines).toEqual(['(personal data erased)', `Account ${user.id}`]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refunds a fulfilled order once per idempotency key, as a credit note on its invoice', async () => {
    const planId = await priced();
    const user = await suite.signedIn();
    const admin = (await suite.signedIn(['admin'])).token;
    const order = expectStatus(await checkout(user.token, uuidv7(), { planId, country: 'US' }), 201).body;
    const paid = expectStatus(await confirm(order.id, 'REF-R'), 200).body;
    const refund = (key: string, body: Record<string, unknown>) => suite.call<Order>('POST', `/v1/admin/billing/orders/${order.id}/refund`, { token: admin, body, headers: { 'idempotency-key': key } });
    const key = uuidv7();
    expect(expectStatus(await refund(key, { amountMinor: 400, reason: 'goodwill' }), 200).body).toMatchObject({ status: 'fulfilled', refundedMinor: 400 });
    expect(expectStatus(await refund(key, { amountMinor: 400, reason: 'goodwill' }), 200).body).toMatchObject({ refundedMinor: 400 });
    expect(expectStatus(await refund(uuidv7(), { amountMinor: 600 }), 400).body).toMatchObject({ code: 'invalid_refund', field: 'amountMinor' });
    expect(expectStatus(await refund(uuidv7(), {}), 200).body).toMatchObject({ status: 'refunded', refundedMinor: 999 });
    const invoice = await eventually(async () => {
      const v = expectStatus(await suite.call<Invoice>('GET', `/v1/billing/invoices/${paid.invoiceId}`, { token: user.token }), 200).body;
      return v.creditNotes.length === 2 ? v : undefined;
    });
    expect(invoice.status).toBe('paid');
    expect(invoice.creditNotes.map((n) => n.amountMinor)).toEqual([400, 599]);
    expect(invoice.creditNotes.map((n) => n.number)).toEqual([`CN-${year}-EUR-000001`, `CN-${year}-EUR-000002`]);
    // Each credit note as a PDF of its own; only its customer gets it.
    const notePath = `/v1/billing/invoices/${paid.invoiceId}/credit-notes/${invoice.creditNotes[0]!.id}/pdf`;
    const pdf = await fetch(`${suite.api.url}${notePath}`, { headers: { authorization: `Bearer ${user.token}` } });
    expect([pdf.status, pdf.headers.get('content-type')]).toEqual([200, 'application/pdf']);
    const dir = await mkdtemp(join(tmpdir(), 'rg-credit-note-'));
    try {
      await writeFile(join(dir, 'note.pdf'), Buffer.from(await pdf.arrayBuffer()));
      const { stdout } = await run('pdftotext', ['-layout', join(dir, 'note.pdf'), '-']);
      expect(stdout).toContain(`Credit note CN-${year}-EUR-000001`);
      expect(stdout).toContain('4.00 EUR');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const stranger = await suite.signedIn();
    expect(expectStatus(await suite.call('GET', notePath, { token: stranger.token }), 404).body).toMatchObject({ code: 'invoice_not_found' });
    expect(expectStatus(await suite.call('GET', notePath.replace(/cn_[0-9a-f]{32}/, `cn_${'0'.repeat(32)}`), { token: user.token }), 404).body).toMatchObject({ code: 'credit_note_not_found' });

    const today = new Date().toISOString().slice(0, 10);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    const revenue = expectStatus(await suite.call<{ days: { planId: string; grossMinor: number; refundedMinor: number; netMinor: number }[] }>('GET', `/v1/admin/billing/revenue?from=${today}&to=${tomorrow}`, { token: admin }), 200).body.days;
    expect(revenue.find((r) => r.planId === planId)).toMatchObject({ grossMinor: 999, refundedMinor: 999, netMinor: 0 });
    expect(expectStatus(await suite.call('GET', `/v1/admin/billing/revenue?from=${today}&to=2026-02-30`, { token: admin }), 400).body).toMatchObject({ field: 'to' });
  });

  it('50 concurrent checkouts with one key make one order; 50 with distinct keys, confirmed at once, make 50 invoices numbered without a gap', async () => {
    const planId = await createPlan(suite.api.plans, { price: { amountMinor: 500, currency: 'CHF' } });
    const user = await suite.signedIn();
    const key = uuidv7();
    const same = await Promise.all(Array.from({ length: 50 }, () => checkout(user.token, key, { planId, country: 'US' })));
    expect(new Set(same.map((r) => r.status))).toEqual(new Set([201]));
    expect(new Set(same.map((r) => r.body.id)).size).toBe(1);
    const events = await readLog(suite.env.rt, suite.env.rt.names.aggregate('billing', 'order', same[0]!.body.id));
    expect(events.filter((e) => e.type === 'billing.OrderPlaced')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'billing.OrderPaymentPending')).toHaveLength(1);

    const buyers = await Promise.all(Array.from({ length: 50 }, () => suite.signedIn()));
    const orders = await Promise.all(buyers.map(async (b) => expectStatus(await checkout(b.token, uuidv7(), { planId, country: 'US' }), 201).body));
    const admin = (await suite.signedIn(['admin'])).token;
    await Promise.all(orders.map(async (o, i) => expectStatus(await suite.call('POST', `/v1/admin/billing/orders/${o.id}/confirm`, { token: admin, body: { reference: `BATCH-${i}` } }), 200)));
    const numbers = await eventually(async () => {
      const list = expectStatus(await suite.call<{ invoices: Invoice[] }>('GET', `/v1/admin/billing/invoices?limit=500`, { token: admin }), 200).body.invoices;
      const chf = list.filter((i) => i.number?.includes('-CHF-'));
      return chf.length === 50 ? chf.map((i) => Number(i.number!.slice(-6))).sort((a, b) => a - b) : undefined;
    });
    expect(numbers).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
  });
});
