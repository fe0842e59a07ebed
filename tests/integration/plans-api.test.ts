/**
 * Plans and subscriptions over HTTP against real NATS, Postgres and Redis:
 * the catalogue (public, exact bytes, retirement), operators granting plans and
 * top-ups, the user's own subscription and time zone, a plan change that waits
 * for the next period, and the scheduler's command rolling a period exactly once.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { apiSuite, expectStatus } from '../support/api-suite.js';
import { eventually } from '../support/isolated.js';

type Plan = { planId: string; name: string; allowanceBytes: string | null; resetStrategy: string; price: { amountMinor: number; currency: string }; retired: boolean; sequence: number };
type Subscription = { planId: string; status: string; periodStart: string | null; periodEnd: string | null; usedBytes: string; allowanceBytes: string | null; expiresAt: string | null; timeZone: string; ipLimit: number | null; sequence?: number };
type ErrorBody = { code: string; message: string; field?: string };

const MiB = 1_048_576;

describe('plans over HTTP', () => {
  const suite = apiSuite();
  const call: typeof suite.call = (...args) => suite.call(...args);
  let operator: string;

  beforeAll(async () => {
    operator = (await suite.signedIn(['operator'])).token;
  });

  const planBody = (planId: string, extra: Record<string, unknown> = {}) => ({
    planId,
    name: `Plan ${planId}`,
    allowanceBytes: String(10 * MiB),
    resetStrategy: 'month',
    validity: { kind: 'days', days: 30 },
    ipLimit: 2,
    nodeLabels: ['eu'],
    price: { amountMinor: 499, currency: 'EUR' },
    ...extra,
  });

  async function createPlan(planId: string, extra: Record<string, unknown> = {}): Promise<Plan> {
    return expectStatus(await call<Plan>('POST', '/v1/admin/plans', { token: operator, body: planBody(planId, extra) }), 201).body;
  }

  it('an operator creates a plan; anyone reads the catalogue, bytes exact past 2^53', async () => {
    const big = await createPlan('big', { allowanceBytes: '9007199254740993' });
    expect(big).toMatchObject({ planId: 'big', allowanceBytes: '9007199254740993', resetStrategy: 'month', price: { amountMinor: 499, currency: 'EUR' }, retired: false });
    const res = expectStatus(await call<{ plans: Plan[] }>('GET', '/v1/plans', { headers: { 'x-min-sequence': String(big.sequence) } }), 200);
    expect(res.body.plans.find((p) => p.planId === 'big')?.allowanceBytes).toBe('9007199254740993');
  });

  it('refuses bad plans with a stable code naming the field, and changes nothing', async () => {
    const bad = async (body: Record<string, unknown>, status: number, code: string, field?: string) => {
      const res = await call<ErrorBody>('POST', '/v1/admin/plans', { token: operator, body });
      expect(res.status, JSON.stringify(res.body)).toBe(status);
      expect(res.body.code).toBe(code);
      if (field) expect(res.body.field).toBe(field);
    };
    await bad(planBody('bad1', { price: { amountMinor: 100, currency: 'XYZ' } }), 400, 'invalid_plan', 'price.currency');
    await bad(planBody('bad2', { nextPlanId: 'nowhere' }), 400, 'invalid_plan', 'nextPlanId');
    await bad(planBody('bad3', { allowanceBytes: 1024 }), 400, 'invalid_body', 'allowanceBytes');
    await bad(planBody('bad4', { validity: { kind: 'on_hold', days: 30 } }), 400, 'invalid_plan', 'validity.timeoutDays');
    await createPlan('dup');
    await bad(planBody('dup'), 409, 'plan_exists');
    const client1 = await suite.signedIn();
    expect((await call('POST', '/v1/admin/plans', { token: client1.token, body: planBody('mine') })).status).toBe(403);
    const { plans } = (await call<{ plans: Plan[] }>('GET', '/v1/plans')).body;
    expect(plans.map((p) => p.planId).filter((id) => id.startsWith('bad') || id === 'mine')).toEqual([]);
  });

  it('a user has no subscription until an operator grants one; then sees plan, status, period and allowance', async () => {
    await createPlan('basic');
    const alice = await suite.signedIn();
    const none = await call<ErrorBody>('GET', '/v1/account/subscription', { token: alice.token });
    expect(none.status).toBe(404);
    expect(none.body.code).toBe('subscription_not_found');

    const granted = expectStatus(await call<Subscription>('POST', `/v1/admin/users/${alice.id}/subscription`, { token: operator, body: { planId: 'basic' } }), 201).body;
    expect(granted).toMatchObject({ planId: 'basic', status: 'active', usedBytes: '0', allowanceBytes: String(10 * MiB), timeZone: 'UTC', ipLimit: 2 });
    const mine = expectStatus(await call<Subscription>('GET', '/v1/account/subscription', { token: alice.token, headers: { 'x-min-sequence': String(granted.sequence) } }), 200).body;
    expect(mine.periodStart).toBe(granted.periodStart);
    expect(new Date(mine.expiresAt!).getTime() - new Date(mine.periodStart!).getTime()).toBe(30 * 86_400_000);

    const unknownPlan = await call<ErrorBody>('POST', `/v1/admin/users/${alice.id}/subscription`, { token: operator, body: { planId: 'nope' } });
    expect([unknownPlan.status, unknownPlan.body.code]).toEqual([404, 'plan_not_found']);
    const unknownUser = await call<ErrorBody>('POST', `/v1/admin/users/${uuidv7()}/subscription`, { token: operator, body: { planId: 'basic' } });
    expect([unknownUser.status, unknownUser.body.code]).toEqual([404, 'user_not_found']);
  });

  it('grants add bytes once per grantId; the same id with other bytes is a conflict', async () => {
    await createPlan('topup');
    const bob = await suite.signedIn();
    expectStatus(await call('POST', `/v1/admin/users/${bob.id}/subscription`, { token: operator, body: { planId: 'topup' } }), 201);
    const grant = { bytes: String(5 * MiB), grantId: 'order-17' };
    const first = expectStatus(await call<{ grantId: string; subscription: Subscription }>('POST', `/v1/admin/users/${bob.id}/grants`, { token: operator, body: grant }), 201).body;
    expect(first.subscription.allowanceBytes).toBe(String(15 * MiB));
    const again = expectStatus(await call<{ subscription: Subscription }>('POST', `/v1/admin/users/${bob.id}/grants`, { token: operator, body: grant }), 201).body;
    expect(again.subscription.allowanceBytes).toBe(String(15 * MiB));
    const conflict = await call<ErrorBody>('POST', `/v1/admin/users/${bob.id}/grants`, { token: operator, body: { ...grant, bytes: '1' } });
    expect([conflict.status, conflict.body.code]).toEqual([409, 'grant_conflict']);
    const bad = await call<ErrorBody>('POST', `/v1/admin/users/${bob.id}/grants`, { token: operator, body: { bytes: '0' } });
    expect([bad.status, bad.body.code, bad.body.field]).toEqual([400, 'invalid_grant', 'bytes']);
  });

  it('the time zone anchors the next period: a calendar month in Berlin ends at local midnight of the 1st', async () => {
    await createPlan('cal', { resetStrategy: 'calendar_month', validity: { kind: 'none' } });
    const carol = await suite.signedIn();
    const wrong = await call<ErrorBody>('PUT', '/v1/account/time-zone', { token: carol.token, body: { timeZone: 'Mars/Olympus' } });
    expect([wrong.status, wrong.body.code, wrong.body.field]).toEqual([400, 'invalid_time_zone', 'timeZone']);
    expect(expectStatus(await call('PUT', '/v1/account/time-zone', { token: carol.token, body: { timeZone: 'europe/berlin' } }), 200).body).toMatchObject({ timeZone: 'Europe/Berlin' });
    const sub = expectStatus(await call<Subscription>('POST', `/v1/admin/users/${carol.id}/subscription`, { token: operator, body: { planId: 'cal', startsAt: '2026-03-15T12:00:00Z' } }), 201).body;
    expect(sub).toMatchObject({ timeZone: 'Europe/Berlin', expiresAt: null });
    // The period running now, in Berlin: it ends at the next local 1st, 00:00 (22:00 or 23:00 UTC the day before).
    const end = new Date(sub.periodEnd!);
    const local = new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/Berlin', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }).format(end);
    expect(local).toBe('01, 00:00');
  });

  it('a plan change waits for the next period; a retired plan leaves the catalogue, keeps its subscribers, takes no new ones', async () => {
    await createPlan('evolving');
    const dave = await suite.signedIn();
    expectStatus(await call('POST', `/v1/admin/users/${dave.id}/subscription`, { token: operator, body: { planId: 'evolving' } }), 201);
    const updated = expectStatus(await call<Plan>('PUT', '/v1/admin/plans/evolving', { token: operator, body: { ...planBody('x', { allowanceBytes: String(20 * MiB) }), planId: undefined } }), 200).body;
    expect(updated.allowanceBytes).toBe(String(20 * MiB));
    const still = expectStatus(await call<Subscription>('GET', '/v1/account/subscription', { token: dave.token, headers: { 'x-min-sequence': String(updated.sequence) } }), 200).body;
    expect(still.allowanceBytes).toBe(String(10 * MiB));

    const retired = expectStatus(await call<Plan>('DELETE', '/v1/admin/plans/evolving', { token: operator }), 200).body;
    expect(retired.retired).toBe(true);
    const { plans } = (await call<{ plans: Plan[] }>('GET', '/v1/plans', { headers: { 'x-min-sequence': String(retired.sequence) } })).body;
    expect(plans.some((p) => p.planId === 'evolving')).toBe(false);
    expect((await call<Subscription>('GET', '/v1/account/subscription', { token: dave.token })).body.status).toBe('active');
    const erin = await suite.signedIn();
    const refused = await call<ErrorBody>('POST', `/v1/admin/users/${erin.id}/subscription`, { token: operator, body: { planId: 'evolving' } });
    expect([refused.status, refused.body.code]).toEqual([409, 'plan_retired']);
    const gone = await call<ErrorBody>('PUT', '/v1/admin/plans/nothing-here', { token: operator, body: { name: 'x', price: { amountMinor: 1, currency: 'USD' } } });
    expect([gone.status, gone.body.code]).toEqual([404, 'plan_not_found']);
  });

  it('a period that is over rolls exactly once, to the plan terms of now, and is due no more', async () => {
    await createPlan('daily', { resetStrategy: 'day', validity: { kind: 'none' } });
    const frank = await suite.signedIn();
    const startsAt = new Date(Date.now() - 36 * 3_600_000);
    const sub = expectStatus(await call<Subscription>('POST', `/v1/admin/users/${frank.id}/subscription`, { token: operator, body: { planId: 'daily', startsAt: startsAt.toISOString() } }), 201).body;
    // Backdated: the period running now is today's.
    expect(new Date(sub.periodEnd!).getTime()).toBeGreaterThan(Date.now());
    const plans = suite.api.plans.subscriptions;
    const tomorrow = new Date(new Date(sub.periodEnd!).getTime() + 1000);
    expect((await plans.due(tomorrow, 1000)).map((d) => d.userId)).toContain(frank.id);
    // Two workers firing the same due roll at once record one PeriodRolled.
    const fired = await Promise.all([plans.advance(frank.id, tomorrow), plans.advance(frank.id, tomorrow)]);
    expect(fired).toContain(true);
    const { events } = await suite.api.plans.deps.handler.store.read(suite.api.plans.deps.subject('subscription', frank.id), 0);
    expect(events.filter((e) => e.type === 'plans.PeriodRolled')).toHaveLength(1);
    await eventually(async () => (await plans.view(frank.id, tomorrow)).periodStart === sub.periodEnd);
    expect((await plans.due(tomorrow, 1000)).map((d) => d.userId)).not.toContain(frank.id);
    expect(await plans.advance(frank.id, tomorrow)).toBe(false);
  });
});
