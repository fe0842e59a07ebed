/**
 * The plans operations beyond the API's catalogue and grants: an operator
 * suspends and lifts a subscription through the API, `relaygrid plans` and
 * the `relaygrid-ops` NATS service, and runs the catalogue over NATS.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { runCli } from '../support/cli.js';
import { fleetStack, type FleetStackWithApi } from '../support/fleet-stack.js';
import { client } from '../support/http.js';
import { eventually } from '../support/isolated.js';
import { readLog } from '../support/log.js';
import { testUsers } from '../support/users.js';

const META = { source: 'relaygrid/test', actor: 'operator:test' };

describe('plans operations: suspension, and the catalogue over NATS', () => {
  let stack: FleetStackWithApi;
  let nc: NatsConnection;
  let call: ReturnType<typeof client>;
  let token: string;

  const ops = async <T = Record<string, unknown>>(endpoint: string, body: unknown = {}): Promise<{ error: string | undefined; code: string | undefined; body: T }> => {
    const msg = await nc.request(`${stack.env.rt.names.opsGroup}.${endpoint}`, JSON.stringify(body), { timeout: 10_000 });
    return { error: msg.headers?.get('Nats-Service-Error-Code') || undefined, code: msg.headers?.get('Nats-Service-Error') || undefined, body: JSON.parse(msg.string()) as T };
  };
  const subscriptionOf = (userId: string) => call<{ status: string; planId: string }>('GET', `/v1/admin/users/${userId}/subscription`, { token });
  const statusBecomes = (userId: string, status: string) => eventually(async () => (await subscriptionOf(userId)).body.status === status, 10_000, 100);

  beforeAll(async () => {
    stack = await fleetStack({ api: true });
    nc = await connect({ servers: stack.env.config.natsUrl });
    call = client(stack.api.url);
    token = stack.api.identity.deps.tokens.issue(uuidv7(), uuidv7(), ['operator']);
  });
  afterAll(async () => {
    await nc?.close();
    await stack?.close();
  });

  it('creates, lists and retires plans, and starts, grants, disables and enables a subscription over NATS', async () => {
    const created = await ops('plan.create', { planId: 'nats-plan', name: 'Over NATS', allowanceBytes: '1048576', price: { amountMinor: 500, currency: 'EUR' }, by: 'alice' });
    expect(created.error).toBeUndefined();
    expect(created.body).toMatchObject({ planId: 'nats-plan' });
    expect(typeof created.body['sequence']).toBe('number');
    const refused = await ops('plan.create', { planId: 'nats-plan', name: 'Again', price: { amountMinor: 500, currency: 'EUR' } });
    expect([refused.error, refused.code]).toEqual(['409', 'plan_exists']);
    const missing = await ops('subscription.disable', { userId: uuidv7() });
    expect([missing.error, missing.code, missing.body]).toEqual(['400', 'invalid_request', { code: 'invalid_request', message: 'reason: required' }]);

    const { userId } = await testUsers(stack.env.rt).register(stack.api.identity.deps.handler, { email: `nats-${uuidv7()}@example.org` }, META);
    expect((await ops('subscription.start', { userId, planId: 'nats-plan' })).error).toBeUndefined();
    expect(await ops('subscription.grant', { userId, bytes: '1024', grantId: 'g-1' })).toMatchObject({ body: { userId, grantId: 'g-1' } });
    await statusBecomes(userId, 'active');
    expect((await ops('subscription.disable', { userId, reason: 'chargeback' })).error).toBeUndefined();
    await statusBecomes(userId, 'disabled');
    expect((await ops('subscription.enable', { userId, reason: 'resolved' })).error).toBeUndefined();
    await statusBecomes(userId, 'active');
    expect((await ops<{ planId: string }>('subscription.get', { userId })).body.planId).toBe('nats-plan');

    expect((await ops('plan.retire', { planId: 'nats-plan' })).error).toBeUndefined();
    const plans = await eventually(async () => {
      const listed = (await ops<{ planId: string; retired: boolean }[]>('plans')).body;
      return listed.some((p) => p.planId === 'nats-plan' && p.retired) && listed;
    });
    expect(plans.find((p) => p.planId === 'nats-plan')).toMatchObject({ retired: true });
  });

  it('disables and enables through the API and the CLI; a disable without a reason is refused and changes nothing', async () => {
    await ops('plan.create', { planId: 'api-plan', name: 'Through the API', price: { amountMinor: 100, currency: 'USD' } });
    const email = `api-${uuidv7()}@example.org`;
    const { userId } = await testUsers(stack.env.rt).register(stack.api.identity.deps.handler, { email }, META);
    const grant = () => call<{ sequence: number }>('POST', `/v1/admin/users/${userId}/subscription`, { token, body: { planId: 'api-plan' }, headers: { 'idempotency-key': 'order-1' } });
    const granted = await grant();
    expect(granted.status).toBe(201);
    // A retry (the answer was lost, say) restarts nothing: one SubscriptionStarted in the log.
    expect((await grant()).status).toBe(201);
    const log = await readLog(stack.env.rt, stack.env.rt.names.aggregate('plans', 'subscription', userId));
    expect(log.filter((e) => e.type === 'plans.SubscriptionStarted')).toHaveLength(1);

    const noReason = await call('POST', `/v1/admin/users/${userId}/subscription/disable`, { token, body: {} });
    expect([noReason.status, noReason.body['code'], noReason.body['field']]).toEqual([400, 'invalid_body', 'reason']);
    const disabled = await call<{ status: string }>('POST', `/v1/admin/users/${userId}/subscription/disable`, { token, body: { reason: 'abuse report' } });
    expect([disabled.status, disabled.body.status]).toEqual([200, 'disabled']);
    const enabled = await call<{ status: string }>('POST', `/v1/admin/users/${userId}/subscription/enable`, { token, body: {} });
    expect([enabled.status, enabled.body.status]).toEqual([200, 'active']);
    const stranger = await call('POST', `/v1/admin/users/${uuidv7()}/subscription/disable`, { token, body: { reason: 'x' } });
    expect([stranger.status, stranger.body['code']]).toEqual([404, 'user_not_found']);

    const bad = await runCli({ ...stack.env.config, natsUrl: 'nats://127.0.0.1:1' }, ['plans', 'disable', email]);
    expect([bad.code, bad.stderr.trim().split('\n')[0]]).toEqual([2, 'relaygrid: --reason: missing']);
    const cli = await runCli(stack.env.config, ['plans', 'disable', email, '--reason', 'paused at the shell']);
    expect([cli.code, cli.stdout.trim()]).toEqual([0, `disabled the subscription of ${email}`]);
    await statusBecomes(userId, 'disabled');
    expect((await runCli(stack.env.config, ['plans', 'enable', email])).code).toBe(0);
    await statusBecomes(userId, 'active');
  });
});
