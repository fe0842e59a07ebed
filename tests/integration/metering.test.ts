/**
 * Metering with real ticks: an agent (acknowledge-only core) reports traffic
 * through the fleet's usage endpoint, the metering projector folds it into the
 * user's period, and the metering worker (two of them) turns it into
 * subscription events. Ticks sent twice, sent again after an agent crash, and
 * arriving after the roll of their period count once, in their period, to the
 * byte; a tick crossing the allowance limits (the delay is printed); a grant
 * reactivates; thresholds fire once each; a hold starts at first traffic;
 * expiry reminders come 3 and 1 days ahead on a controllable clock.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredEvent } from '../../contracts/envelope.js';
import { uuidv7 } from '../../contracts/ids.js';
import { createLogger } from '../../infra/logger.js';
import { Metrics } from '../../infra/metrics.js';
import { startFleetWorker, type RunningFleetWorker } from '../../infra/roles/fleet.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { Plans } from '../../producers/plans/plans.js';
import { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { NodeAgent } from '../../workers/agent/agent.js';
import { AckCoreDriver } from '../../workers/agent/core/ack-driver.js';
import { startMeteringWorker, type MeteringWorker } from '../../workers/plans/metering-worker.js';
import { ManualClock } from '../../workers/scheduler/clock.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { testUsers } from '../support/users.js';

const log = createLogger(process.env['LOG_LEVEL'] ?? 'silent', { test: 'metering' });
const OPERATOR = { actor: 'operator:test' };
const META = { source: 'relaygrid/test', actor: 'operator:test' };
const NODE = 'meter-1';
const MiB = 1024n * 1024n;
const price = { amountMinor: 100, currency: 'EUR' };

describe('metering', () => {
  let env: Isolated;
  let projectors: RunningProjectors;
  let worker: RunningFleetWorker;
  let second: MeteringWorker;
  let secondWatcher: CheckpointWatcher;
  let plans: Plans;
  let nc: NatsConnection;
  let dir: string;
  let agent: NodeAgent;
  const driver = new AckCoreDriver();
  // The clock the schedulers read: only the expiry reminders need it moved, and that test comes last.
  const clock = new ManualClock(new Date());

  const user = async () => (await testUsers(env.rt).register(plans.deps.handler, { email: `m-${uuidv7()}@example.org` }, META)).userId;
  const events = async (userId: string): Promise<StoredEvent[]> => (await plans.deps.handler.store.read(plans.deps.subject('subscription', userId), 0)).events;
  const ofType = async (userId: string, type: string) => (await events(userId)).filter((e) => e.type === type);
  const traffic = async (userId: string, uplink: bigint, downlink: bigint) => {
    driver.traffic.set(userId, { uplink, downlink });
    await agent.collectUsage();
  };
  const meteringAt = async (seq: number) => eventually(async () => ((await env.rt.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', 'metering').executeTakeFirst())?.seq ?? 0) >= seq);
  const usageRows = async (userId: string) =>
    (await env.rt.db.selectFrom('subscription_usage').select(['period_start', (eb) => eb.cast<string>('uplink_bytes', 'text').as('up'), (eb) => eb.cast<string>('downlink_bytes', 'text').as('down')]).where('user_id', '=', userId).orderBy('period_start').execute()).map((r) => ({
      periodStart: r.period_start.toISOString(),
      up: BigInt(r.up),
      down: BigInt(r.down),
    }));
  const appendTick = async (users: { userId: string; uplink: bigint; downlink: bigint }[], intervalEnd: Date, tickId = uuidv7()) =>
    plans.deps.handler.store.append(env.rt.names.aggregate('usage', 'node', NODE), [{ type: 'usage.UsageTicked', data: { tickId, nodeId: NODE, intervalStart: new Date(intervalEnd.getTime() - 10_000), intervalEnd, users } }], {
      expectedSeq: null,
      meta: { source: 'relaygrid/test' },
    });

  beforeAll(async () => {
    env = await isolated();
    dir = await mkdtemp(join(tmpdir(), 'rg-metering-'));
    nc = await connect({ servers: env.config.natsUrl });
    projectors = startProjectors(env.rt);
    worker = await startFleetWorker(env.rt, { clock });
    plans = new Plans({ handler: worker.fleet.deps.handler, db: env.rt.db });
    // A second metering worker, with its own handler, as a second process would run it.
    secondWatcher = new CheckpointWatcher(env.rt.config.databaseUrl, env.rt.db);
    second = await startMeteringWorker(new Plans({ handler: new CommandHandler(plans.deps.handler.store), db: env.rt.db }), {
      databaseUrl: env.rt.config.databaseUrl,
      watcher: secondWatcher,
      log,
      metrics: new Metrics({ defaultMetrics: false }),
      clock,
      standbyPollMs: 100,
    });
    await worker.fleet.nodes.register({ nodeId: NODE, address: '192.0.2.7' }, 'api', OPERATOR);
    await worker.fleet.profiles.create({ profileId: 'main', kind: 'vless', port: 443 }, OPERATOR);
    await worker.fleet.rollouts.plan({ reason: 'metering test' }, OPERATOR);
    await eventually(async () => (await env.rt.db.selectFrom('fleet_nodes').select('desired_template').where('id', '=', NODE).executeTakeFirst())?.desired_template);
    agent = new NodeAgent({ nc, names: env.rt.names, nodeId: NODE, stateDir: join(dir, NODE), driver, apiPort: 1, log, syncIntervalMs: 60_000, heartbeatIntervalMs: 60_000, usageIntervalMs: 600_000, requestTimeoutMs: 2_000 });
    await agent.start();
    await eventually(() => agent.appliedTemplate !== null);
    const { catalogue } = plans;
    await catalogue.create({ planId: 'big', name: 'Big', allowanceBytes: String(1024n * MiB), resetStrategy: 'day', price }, OPERATOR);
    await catalogue.create({ planId: 'small', name: 'Small', allowanceBytes: String(MiB), resetStrategy: 'month', overage: 'block', price }, OPERATOR);
    await catalogue.create({ planId: 'held', name: 'Held', allowanceBytes: String(MiB), validity: { kind: 'on_hold', days: 30, timeoutDays: 7 }, price }, OPERATOR);
    await catalogue.create({ planId: 'trial', name: 'Trial', allowanceBytes: String(MiB), validity: { kind: 'days', days: 5 }, price }, OPERATOR);
  }, 30_000);

  afterAll(async () => {
    await agent?.stop(false);
    await second?.close();
    await secondWatcher?.close();
    await worker?.close();
    await projectors?.close();
    await nc?.close();
    await env?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('counts ticks sent twice, resent after an agent crash and arriving after their roll once each, in their period, to the byte', async () => {
    const a = await user();
    await plans.subscriptions.start(a, { planId: 'big' }, OPERATOR);
    const first = (await eventually(async () => (await plans.subscriptions.view(a).catch(() => null))?.periodEnd ?? null));
    await traffic(a, 1_000n, 2_000_000_000_000n);

    // The agent died after the fleet took this tick and before it cleared its spool: it sends it again at its next start.
    const resent = { tickId: uuidv7(), intervalStart: new Date(Date.now() - 10_000).toISOString(), intervalEnd: new Date().toISOString(), users: [{ userId: a, uplink: '5', downlink: '7' }] };
    await writeFile(join(dir, NODE, 'usage-spool.ndjson'), `${JSON.stringify(resent)}\n`);
    await agent.collectUsage();
    await writeFile(join(dir, NODE, 'usage-spool.ndjson'), `${JSON.stringify(resent)}\n`);
    await agent.collectUsage();
    // Past JetStream's duplicate window the same tick is a new message: the metering ledger drops it.
    await appendTick([{ userId: a, uplink: 5n, downlink: 7n }], new Date(resent.intervalEnd), resent.tickId);

    // The day ends; the period rolls. A tick from before the roll arrives after it, and one from the new period.
    const boundary = new Date(first);
    await plans.subscriptions.advance(a, new Date(boundary.getTime() + 60_000));
    await eventually(async () => (await plans.subscriptions.view(a)).periodStart === first);
    await traffic(a, 10n, 20n);
    const { seq } = await appendTick([{ userId: a, uplink: 300n, downlink: 400n }], new Date(boundary.getTime() + 30_000));
    await meteringAt(seq);

    const rows = await usageRows(a);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({ up: 1_015n, down: 2_000_000_000_027n });
    expect(rows[1]).toEqual({ periodStart: first, up: 300n, down: 400n });
    // What the core reported, to the byte: every tick once (the resent one once).
    const reported = 1_000n + 2_000_000_000_000n + 5n + 7n + 10n + 20n + 300n + 400n;
    expect(rows.reduce((sum, r) => sum + r.up + r.down, 0n)).toBe(reported);
    expect((await plans.subscriptions.view(a)).usedBytes).toBe('700');
  });

  it('limits at the tick that crosses the allowance, thresholds once each with two workers, and a grant reactivates', async () => {
    const b = await user();
    await plans.subscriptions.start(b, { planId: 'small' }, OPERATOR);
    await eventually(async () => (await plans.subscriptions.view(b).catch(() => null))?.status === 'active');
    await traffic(b, 0n, 500n * 1024n);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await ofType(b, 'plans.UsageThresholdReached')).toEqual([]);

    // One tick crosses 80, 95 and 100 % together.
    const sent = Date.now();
    await traffic(b, 24n * 1024n, 500n * 1024n + 1n);
    const [limited] = await eventually(async () => {
      const found = await ofType(b, 'plans.SubscriptionLimited');
      return found.length > 0 && found;
    }, 10_000);
    console.log(`metering: tick sent -> SubscriptionLimited appended in ${limited!.time.getTime() - sent} ms`);
    expect(limited!.data).toMatchObject({ cause: 'allowance_spent', usedBytes: MiB + 1n });
    await eventually(async () => (await ofType(b, 'plans.UsageThresholdReached')).length === 3);

    // More traffic (the cut is not instant), another batch: nothing repeats.
    await traffic(b, 0n, 4096n);
    await eventually(async () => (await plans.subscriptions.view(b)).status === 'limited');
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect((await ofType(b, 'plans.UsageThresholdReached')).map((e) => e.type === 'plans.UsageThresholdReached' && e.data.percent)).toEqual([80, 95, 100]);
    expect(await ofType(b, 'plans.SubscriptionLimited')).toHaveLength(1);

    // A grant gives room: reactivated; the next tick draws on it, and the view counts allowance + grant.
    await plans.subscriptions.grant(b, { bytes: String(10n * MiB), grantId: 'g1' }, OPERATOR);
    await eventually(async () => (await ofType(b, 'plans.SubscriptionReactivated')).length === 1);
    await eventually(async () => (await plans.subscriptions.view(b)).status === 'active');
    await traffic(b, 0n, 1n);
    const used = MiB + 1n + 4096n + 1n;
    const drawn = await eventually(async () => {
      const row = await env.rt.db.selectFrom('subscription_grant_usage').select((eb) => eb.cast<string>('used_bytes', 'text').as('used')).where('user_id', '=', b).executeTakeFirst();
      return row?.used === String(used - MiB) && row.used;
    });
    expect(drawn).toBe(String(used - MiB));
    expect(await plans.subscriptions.view(b)).toMatchObject({ status: 'active', usedBytes: String(used), allowanceBytes: String(11n * MiB) });
    expect(await ofType(b, 'plans.SubscriptionLimited')).toHaveLength(1);
  });

  it('starts a held subscription at its first traffic, and counts that traffic in the first period', async () => {
    const c = await user();
    await plans.subscriptions.start(c, { planId: 'held' }, OPERATOR);
    await eventually(async () => (await plans.subscriptions.view(c).catch(() => null))?.status === 'on_hold');
    await traffic(c, 100n, 200n);
    const [activated] = await eventually(async () => {
      const found = await ofType(c, 'plans.SubscriptionActivated');
      return found.length > 0 && found;
    }, 10_000);
    expect(activated!.data).toMatchObject({ cause: 'first_traffic' });
    await eventually(async () => (await plans.subscriptions.view(c)).status === 'active');
    // The parked first tick is attributed with the user's next one.
    await traffic(c, 1n, 2n);
    await eventually(async () => (await plans.subscriptions.view(c)).usedBytes === '303');
    expect(await ofType(c, 'plans.SubscriptionActivated')).toHaveLength(1);
  });

  it('reminds an expiry 3 and 1 local days ahead, once each', async () => {
    const d = await user();
    await plans.subscriptions.start(d, { planId: 'trial' }, OPERATOR, clock.now());
    const expiresAt = new Date((await eventually(async () => (await plans.subscriptions.view(d).catch(() => null))?.expiresAt ?? null)));
    const reminders = async () => (await ofType(d, 'plans.ExpiryApproaching')).map((e) => e.type === 'plans.ExpiryApproaching' && e.data.daysLeft);
    clock.set(new Date(expiresAt.getTime() - 3 * 86_400_000 + 60_000));
    await eventually(async () => (await reminders()).length === 1, 10_000);
    clock.set(new Date(expiresAt.getTime() - 86_400_000 + 60_000));
    await eventually(async () => (await reminders()).length === 2, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await reminders()).toEqual([3, 1]);
  });
});
