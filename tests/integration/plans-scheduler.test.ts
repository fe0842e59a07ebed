/**
 * The plans' scheduled commands driven by a controllable clock, with two
 * workers: daily resets at local midnight across a DST change, an expiry
 * into the next plan, a hold that times out — each recorded exactly once,
 * and the standby taking over when the leader dies in the middle of a reset.
 */
import { describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../contracts/envelope.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { sql } from 'kysely';
import { Plans } from '../../producers/plans/plans.js';
import type { PlanSubscriptions } from '../../producers/plans/subscriptions.js';
import { startPeriodScheduler } from '../../workers/plans/period-scheduler.js';
import { ManualClock } from '../../workers/scheduler/clock.js';
import type { Scheduler } from '../../workers/scheduler/scheduler.js';
import { apiSuite } from '../support/api-suite.js';
import { eventually } from '../support/isolated.js';
import { Metrics } from '../../infra/metrics.js';

const OPERATOR = { actor: 'user:operator' };
const price = { amountMinor: 100, currency: 'EUR' };

describe('plans scheduler', () => {
  const suite = apiSuite();

  it('rolls, expires and ends holds once each, on local time, with two workers and one killed mid-reset', async () => {
    const clock = new ManualClock(new Date('2026-03-27T12:00:00Z'));
    const { catalogue, subscriptions } = suite.api.plans;
    const at = clock.now();
    await catalogue.create({ planId: 'daily', name: 'Daily', allowanceBytes: '1000', resetStrategy: 'day', price }, OPERATOR, at);
    await catalogue.create({ planId: 'free', name: 'Free', resetStrategy: 'none', price: { amountMinor: 0, currency: 'EUR' } }, OPERATOR, at);
    await catalogue.create({ planId: 'trial', name: 'Trial', validity: { kind: 'days', days: 1 }, nextPlanId: 'free', price }, OPERATOR, at);
    await catalogue.create({ planId: 'held', name: 'Held', validity: { kind: 'on_hold', days: 10, timeoutDays: 2 }, price }, OPERATOR, at);
    const [berlin, trial, held] = await Promise.all([suite.signedIn(), suite.signedIn(), suite.signedIn()]);
    await suite.api.identity.deps.decideUser(berlin.id, { type: 'ChangeTimeZone', timeZone: 'Europe/Berlin', at }, OPERATOR);
    await subscriptions.start(berlin.id, { planId: 'daily' }, OPERATOR, at);
    await subscriptions.start(trial.id, { planId: 'trial' }, OPERATOR, at);
    await subscriptions.start(held.id, { planId: 'held' }, OPERATOR, at);

    // Two workers, each with its own handler and state cache, as two processes would have.
    // Armed, a worker dies mid-reset: its roll is appended, then its lock's session ends (as a killed
    // process's does) and the firing never returns, so it never learns that it succeeded.
    let dieMidReset = false;
    const worker = () => {
      const plans = new Plans({ handler: new CommandHandler(suite.api.plans.deps.handler.store), db: suite.env.rt.db });
      const dying = Object.create(plans.subscriptions) as PlanSubscriptions;
      dying.advance = async (userId, now) => {
        const done = await plans.subscriptions.advance(userId, now);
        if (dieMidReset) {
          dieMidReset = false;
          await sql`select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())`.execute(suite.env.rt.db);
          await new Promise(() => undefined);
        }
        return done;
      };
      return startPeriodScheduler(dying, { databaseUrl: suite.env.rt.config.databaseUrl, log: suite.env.rt.log, metrics: new Metrics({ defaultMetrics: false }), clock, pollMs: 50, standbyPollMs: 50 });
    };
    const workers: Scheduler[] = [worker(), worker()];
    try {
      const read = async (userId: string): Promise<StoredEvent[]> => (await suite.api.plans.deps.handler.store.read(suite.api.plans.deps.subject('subscription', userId), 0)).events;
      const ofType = async (userId: string, type: string) => (await read(userId)).filter((e) => e.type === type);

      // Past the Sunday of the change to summer time: Berlin's Mar 29 is 23 hours long.
      clock.set(new Date('2026-03-30T01:00:00Z'));
      await eventually(async () => (await ofType(berlin.id, 'plans.PeriodRolled')).length === 3, 15_000);
      const rolls = (await ofType(berlin.id, 'plans.PeriodRolled')).map((e) => e.type === 'plans.PeriodRolled' && [e.data.periodStart?.toISOString(), e.data.periodEnd?.toISOString()]);
      expect(rolls).toEqual([
        ['2026-03-27T23:00:00.000Z', '2026-03-28T23:00:00.000Z'],
        ['2026-03-28T23:00:00.000Z', '2026-03-29T22:00:00.000Z'],
        ['2026-03-29T22:00:00.000Z', '2026-03-30T22:00:00.000Z'],
      ]);
      await eventually(async () => (await ofType(trial.id, 'plans.SubscriptionStarted')).length === 2 && (await ofType(held.id, 'plans.SubscriptionActivated')).length === 1, 15_000);
      const expired = await ofType(trial.id, 'plans.SubscriptionExpired');
      expect(expired.map((e) => e.data)).toMatchObject([{ planId: 'trial', nextPlanId: 'free', expiresAt: new Date('2026-03-28T12:00:00Z') }]);
      expect((await subscriptions.view(trial.id)).planId).toBe('free');
      const activated = await ofType(held.id, 'plans.SubscriptionActivated');
      expect(activated.map((e) => e.data)).toMatchObject([{ cause: 'on_hold_timeout', clockStart: new Date('2026-03-29T12:00:00Z'), expiresAt: new Date('2026-04-08T12:00:00Z') }]);

      // The leader dies in the middle of the next Berlin midnight's reset; the standby takes over: one roll.
      dieMidReset = true;
      clock.set(new Date('2026-03-31T00:00:00Z'));
      await eventually(async () => (await ofType(berlin.id, 'plans.PeriodRolled')).length === 4, 15_000);
      expect(dieMidReset, 'the leader fired, and died, mid-reset').toBe(false);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(await ofType(berlin.id, 'plans.PeriodRolled')).toHaveLength(4);
      expect(await ofType(trial.id, 'plans.SubscriptionExpired')).toHaveLength(1);
      expect(await ofType(held.id, 'plans.SubscriptionActivated')).toHaveLength(1);
      const view = await eventually(async () => {
        const v = await subscriptions.view(berlin.id);
        return v.periodStart === '2026-03-30T22:00:00.000Z' && v;
      });
      expect(view).toMatchObject({ status: 'active', periodEnd: '2026-03-31T22:00:00.000Z', timeZone: 'Europe/Berlin' });
    } finally {
      await Promise.all(workers.map((w) => w.close()));
    }
  });
  it("leaves a forgotten person's subscription as it stands: nothing falls due for them", async () => {
    const { catalogue, subscriptions } = suite.api.plans;
    const at = new Date();
    await catalogue.create({ planId: 'hourly-ish', name: 'Daily again', resetStrategy: 'day', price }, OPERATOR, at);
    const [kept, forgotten] = await Promise.all([suite.signedIn(), suite.signedIn()]);
    await subscriptions.start(kept.id, { planId: 'hourly-ish' }, OPERATOR, at);
    await subscriptions.start(forgotten.id, { planId: 'hourly-ish' }, OPERATOR, at);
    await suite.api.identity.accounts.forget(forgotten.id, OPERATOR);
    const later = new Date(at.getTime() + 3 * 86_400_000);
    const due = await eventually(async () => {
      const ids = (await subscriptions.due(later, 1000)).map((d) => d.userId);
      return ids.includes(kept.id) && !ids.includes(forgotten.id) && ids;
    }, 15_000);
    expect(due).not.toContain(forgotten.id);
  });
});
