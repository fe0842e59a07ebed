/** `relaygrid plans …` as an operator runs it: a real process, the catalogue and a subscription, one-line errors. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIdentity } from '../../infra/roles/api.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import type { Identity } from '../../producers/identity/identity.js';
import { Plans } from '../../producers/plans/plans.js';
import { runCli } from '../support/cli.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { readLog } from '../support/log.js';

describe('relaygrid plans', () => {
  let env: Isolated;
  let identity: Identity;
  let plans: Plans;
  let projectors: RunningProjectors;

  beforeAll(async () => {
    env = await isolated();
    identity = openIdentity(env.rt);
    await identity.start();
    plans = new Plans({ handler: identity.deps.handler, db: env.rt.db });
    projectors = startProjectors(env.rt, ['plans']);
  });
  afterAll(async () => {
    await projectors?.close();
    await identity?.stop();
    await env?.cleanup();
  });

  const cli = (args: string[]) => runCli(env.config, ['plans', ...args]);

  it('refuses bad arguments before it connects, in one line with the rule', async () => {
    const bad = await runCli({ ...env.config, natsUrl: 'nats://127.0.0.1:1' }, ['plans', 'create', 'x', '--name', 'X', '--price-minor', '1', '--currency', 'XXY']);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim()).toBe('relaygrid: invalid_plan: price.currency: must be an ISO 4217 currency code such as EUR or USD');
    expect((await cli(['grant', 'someone', '10GB'])).stderr).toContain('<bytes>: a whole number of bytes');
    const update = await runCli({ ...env.config, natsUrl: 'nats://127.0.0.1:1' }, ['plans', 'update', 'x', '--reset', 'weekly']);
    expect([update.code, update.stderr.trim()]).toEqual([2, expect.stringMatching(/^relaygrid: invalid_plan: resetStrategy: /)]);
  });

  it('creates, updates only what is given, lists with a header, subscribes a user by email and grants bytes', async () => {
    const created = await cli(['create', 'pro', '--name', 'Pro', '--allowance', '50GiB', '--reset', 'month', '--days', '30', '--price-minor', '999', '--currency', 'eur', '--ip-limit', '3']);
    expect(created.code, created.stderr).toBe(0);
    expect((await cli(['update', 'pro', '--allowance', '100GiB'])).code).toBe(0);
    const plan = await plans.catalogue.current('pro');
    expect(plan.terms).toMatchObject({ allowanceBytes: 100n * 1024n ** 3n, resetStrategy: 'month', validity: { kind: 'days', days: 30 }, ipLimit: 3, price: { amountMinor: 999n, currency: 'EUR' } });
    const [createdEvent] = await readLog(env.rt, env.rt.names.aggregate('plans', 'plan', 'pro'));
    expect(createdEvent?.meta.actor).toMatch(/^operator:/);

    const listed = await eventually(async () => {
      const result = await cli(['list']);
      return result.stdout.includes('107374182400') && result;
    }, 20_000, 200);
    const [header, ...rows] = listed.stdout.trimEnd().split('\n');
    expect(header?.split(/\s{2,}/)).toEqual(['ID', 'NAME', 'ALLOWANCE', 'RESET', 'VALIDITY', 'PRICE', 'NEXT', 'STATUS']);
    expect(rows.map((r) => r.split(/\s{2,}/))).toEqual([['pro', 'Pro', '107374182400', 'month', '30d', '999 EUR', '-', 'on sale']]);

    const user = await identity.accounts.register({ email: 'buyer@example.org', password: 'long enough password' });
    expect((await cli(['subscribe', 'buyer@example.org', 'pro'])).code).toBe(0);
    const granted = await cli(['grant', 'buyer@example.org', '1GiB', '--grant-id', 'promo-1']);
    expect(granted.stdout.trim()).toBe('granted 1073741824 bytes to buyer@example.org (grant promo-1)');
    const view = await eventually(async () => {
      const v = await plans.subscriptions.view(user.userId).catch(() => undefined);
      return v?.allowanceBytes === String(101n * 1024n ** 3n) && v;
    }, 20_000, 200);
    expect(view).toMatchObject({ planId: 'pro', status: 'active', ipLimit: 3 });

    const unknown = await cli(['subscribe', 'buyer@example.org', 'nope']);
    expect([unknown.code, unknown.stderr.trim()]).toEqual([2, 'relaygrid: plan_not_found: no plan nope']);
  });
});
