/**
 * The fleet worker role (`relaygrid fleet-worker`, also run by `start`): the
 * agents' endpoints (edge nodes' too: workers/fleet/edge-endpoints.ts), node health from heartbeats, user changes pushed to
 * nodes, the `relaygrid-ops` NATS micro service, and the plans' scheduled
 * commands (period rolls, expiries, the end of holds: workers/plans), and
 * metering's commands (limits, thresholds, first traffic: workers/plans/metering-worker.ts),
 * billing's outgoing webhooks (workers/billing/webhook-delivery.ts), and
 * billing's renewals, dunning and fulfilment sweep (workers/billing/billing-scheduler.ts).
 */
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { Fleet } from '../../producers/fleet/fleet.js';
import { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { AgentEndpoints } from '../../workers/fleet/agent-endpoints.js';
import { EdgeEndpoints } from '../../workers/fleet/edge-endpoints.js';
import { ContextDeps } from '../../producers/context-deps.js';
import type { EdgeAggregate } from '../../producers/edge/site-names.js';
import { Sites } from '../../producers/edge/sites.js';
import { HealthTracker } from '../../workers/fleet/health.js';
import { IpLimiter } from '../../workers/fleet/ip-limit.js';
import { HEARTBEAT_INTERVAL_MS } from '../../workers/fleet/agent-protocol.js';
import { PersonKeys } from '../../producers/identity/crypto/person-keys.js';
import { OpsService } from '../../workers/fleet/ops-service.js';
import { UserSync } from '../../workers/fleet/user-sync.js';
import { RolloutGauge } from '../../workers/fleet/rollout-gauge.js';
import { Plans } from '../../producers/plans/plans.js';
import { startPeriodScheduler } from '../../workers/plans/period-scheduler.js';
import { startMeteringWorker } from '../../workers/plans/metering-worker.js';
import type { Clock } from '../../workers/scheduler/clock.js';
import { startWebhookWorker } from './webhooks.js';
import { startBillingScheduler } from '../../workers/billing/billing-scheduler.js';
import { openOperatorBilling } from './billing.js';
import { billingOps } from '../../workers/billing/billing-ops.js';
import { requireMasterKey } from '../config.js';
import type { Runtime } from '../runtime.js';

export interface RunningFleetWorker {
  fleet: Fleet;
  ipLimit: IpLimiter;
  close(): Promise<void>;
}

export interface FleetWorkerOptions {
  /** No heartbeat for this long: the node is down (default three heartbeat intervals). */
  downAfterMs?: number;
  /** What the plans' scheduler reads the time from (tests move a ManualClock). */
  clock?: Clock;
}

/** The fleet context on this process's connections; needs RG_MASTER_KEY. */
export function openFleet(rt: Runtime, watcher: Pick<CheckpointWatcher, 'waitFor'>, handler = new CommandHandler(new EventStore(rt.nats, rt.names, rt.registry), { metrics: rt.metrics })): Fleet {
  return new Fleet({ handler, db: rt.db, nats: rt.nats, masterKey: requireMasterKey(rt.config), log: rt.log, watcher });
}

export async function startFleetWorker(rt: Runtime, opts: FleetWorkerOptions = {}): Promise<RunningFleetWorker> {
  const watcher = new CheckpointWatcher(rt.config.databaseUrl, rt.db);
  const fleet = openFleet(rt, watcher);
  const health = new HealthTracker(fleet.deps, rt.log, opts.downAfterMs, rt.metrics);
  const keys = new PersonKeys(rt.db, requireMasterKey(rt.config));
  const ipLimit = new IpLimiter(fleet.deps, keys, rt.log, { nodeTimeoutMs: opts.downAfterMs ?? 3 * HEARTBEAT_INTERVAL_MS });
  const edge = new EdgeEndpoints(fleet.deps, new Sites(new ContextDeps<EdgeAggregate>('edge', fleet.deps.handler, rt.db)), watcher, rt.log);
  const endpoints = new AgentEndpoints(fleet.deps, fleet.configs, fleet.rollouts, health, watcher, rt.log, rt.metrics, { keys, ipLimit }, edge);
  const userSync = new UserSync(fleet.deps, fleet.configs, watcher, rt.log, rt.metrics);
  const plans = new Plans({ handler: fleet.deps.handler, db: rt.db });
  const billing = openOperatorBilling(rt, fleet.deps.handler, plans);
  const ops = new OpsService(fleet.deps, fleet.rollouts, fleet.views, plans, billingOps(billing, { watcher }), rt.log);
  endpoints.start();
  await edge.start();
  health.start();
  ipLimit.start();
  await userSync.start();
  await ops.start('0.1.0');
  const rolloutGauge = new RolloutGauge(rt.db, rt.metrics, rt.log);
  await rolloutGauge.start();
  const periods = startPeriodScheduler(plans.subscriptions, { databaseUrl: rt.config.databaseUrl, log: rt.log, metrics: rt.metrics, ...(opts.clock ? { clock: opts.clock } : {}) });
  const metering = await startMeteringWorker(plans, { databaseUrl: rt.config.databaseUrl, watcher, log: rt.log, metrics: rt.metrics, ...(opts.clock ? { clock: opts.clock } : {}) });
  const webhooks = await startWebhookWorker(rt, fleet.deps.handler, watcher, opts.clock ? { clock: opts.clock } : {});
  const billingScheduler = startBillingScheduler(billing.renewals, { databaseUrl: rt.config.databaseUrl, log: rt.log, metrics: rt.metrics, ...(opts.clock ? { clock: opts.clock } : {}) });
  rt.log.info('fleet worker started');
  return {
    fleet,
    ipLimit,
    close: async () => {
      await billingScheduler.close();
      await webhooks.close();
      await metering.close();
      await periods.close();
      await rolloutGauge.stop();
      await ops.stop();
      await userSync.stop();
      await endpoints.stop();
      edge.stop();
      ipLimit.stop();
      await health.stop();
      await watcher.close();
    },
  };
}
