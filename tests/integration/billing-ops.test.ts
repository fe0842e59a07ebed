/**
 * Billing on the `relaygrid-ops` NATS service: an operator confirms a manual
 * payment with `nats req`, sees the order fulfilled and its invoice, refunds
 * under a key (twice: once), and gets the API's codes for what is refused.
 */
import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fleetStack, type FleetStackWithApi } from '../support/fleet-stack.js';
import { readLog } from '../support/log.js';
import { createPlan } from '../support/plans.js';
import { testUsers } from '../support/users.js';

const META = { source: 'relaygrid/test', actor: 'operator:test' };

interface Order {
  id: string;
  status: string;
  invoiceId: string | null;
  refundedMinor: number;
  sequence: number;
}

describe('billing over the relaygrid-ops NATS service', () => {
  let stack: FleetStackWithApi;
  let nc: NatsConnection;

  const ops = async <T = Record<string, unknown>>(endpoint: string, body: unknown = {}): Promise<{ error: string | undefined; code: string | undefined; body: T }> => {
    const msg = await nc.request(`${stack.env.rt.names.opsGroup}.billing.${endpoint}`, JSON.stringify(body), { timeout: 10_000 });
    return { error: msg.headers?.get('Nats-Service-Error-Code') || undefined, code: msg.headers?.get('Nats-Service-Error') || undefined, body: JSON.parse(msg.string()) as T };
  };

  beforeAll(async () => {
    stack = await fleetStack({ api: true });
    nc = await connect({ servers: stack.env.config.natsUrl });
  });
  afterAll(async () => {
    await nc?.close();
    await stack?.close();
  });

  it('confirms a manual order, lists it and its invoice, refunds once per key', async () => {
    const planId = await createPlan(stack.api.plans, { price: { amountMinor: 999, currency: 'EUR' } });
    const { userId } = await testUsers(stack.env.rt).register(stack.api.identity.deps.handler, { email: `ops-${randomUUID()}@example.org` }, META);
    const { orderId } = await stack.api.billing.checkout.checkout(userId, randomUUID(), { planId }, { actor: 'user:test' });

    const confirmed = await ops<Order>('orders.confirm', { orderId, reference: 'SEPA-9', by: 'alice' });
    expect(confirmed.error).toBeUndefined();
    expect(confirmed.body).toMatchObject({ id: orderId, status: 'fulfilled' });
    expect(typeof confirmed.body.sequence).toBe('number');
    // Paid by the operator the request names, with the reference given.
    const log = await readLog(stack.env.rt, stack.env.rt.names.aggregate('billing', 'order', orderId));
    expect(log.find((e) => e.type === 'billing.OrderPaid')?.data).toMatchObject({ by: 'operator:alice', provider: 'manual', providerRef: 'SEPA-9' });

    const listed = await ops<{ orders: Order[] }>('orders.list', { userId, status: 'fulfilled' });
    expect(listed.body.orders.map((o) => o.id)).toEqual([orderId]);
    expect((await ops<Order>('orders.get', { orderId })).body.invoiceId).toBe(confirmed.body.invoiceId);
    const invoices = await ops<{ invoices: { id: string; number: string; status: string }[] }>('invoices.list', { userId });
    expect(invoices.body.invoices).toMatchObject([{ id: confirmed.body.invoiceId, status: 'paid' }]);
    expect((await ops<{ number: string }>('invoices.get', { invoiceId: confirmed.body.invoiceId })).body.number).toBe(invoices.body.invoices[0]!.number);

    for (let i = 0; i < 2; i++) {
      const refunded = await ops<Order>('orders.refund', { orderId, idempotencyKey: 'ops-refund-1', amountMinor: 300 });
      expect([refunded.error, refunded.body.refundedMinor]).toEqual([undefined, 300]);
    }
    const day = (offset: number) => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);
    const revenue = await ops<{ days: { planId: string; grossMinor: number; refundedMinor: number }[] }>('revenue', { from: day(-2), to: day(2) });
    expect(revenue.body.days.filter((d) => d.planId === planId)).toMatchObject([{ grossMinor: 999, refundedMinor: 300 }]);
  });

  it('refuses with the API’s statuses and codes', async () => {
    const unknown = await ops('orders.confirm', { orderId: `ord_${'0'.repeat(32)}`, reference: 'SEPA-1' });
    expect([unknown.error, unknown.code, unknown.body]).toEqual(['404', 'order_not_found', { code: 'order_not_found', message: 'no such order' }]);
    expect(await ops('orders.get', {})).toMatchObject({ error: '400', code: 'invalid_request', body: { message: 'orderId: required' } });
    expect(await ops('orders.refund', { orderId: `ord_${'0'.repeat(32)}` })).toMatchObject({ error: '400', code: 'idempotency_key_required' });
    expect(await ops('orders.list', { status: 'lost' })).toMatchObject({ error: '400', code: 'invalid_request' });
    expect((await ops<{ message: string }>('orders.list', { status: 'lost' })).body.message).toMatch(/^status: one of pending,/);
    expect(await ops('revenue', { from: '2026-12-02', to: '2026-12-01' })).toMatchObject({ error: '400', code: 'invalid_request', body: { message: 'to: must be after from' } });
    expect(await ops('invoices.get', { invoiceId: `inv_${'0'.repeat(32)}` })).toMatchObject({ error: '404', code: 'invoice_not_found' });
  });
});
