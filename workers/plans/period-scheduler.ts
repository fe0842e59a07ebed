/**
 * Rolls usage periods, expires subscriptions (into their next plan) and ends
 * holds, on time, in the user's zone: the subscriptions read model's
 * `next_due_at` is the due query, and each firing is PlanSubscriptions.advance,
 * which decides on the log's state. The key names the occurrence (this user,
 * this due instant), and the decider ignores an occurrence already handled, so
 * a second worker or a restart mid-fire records nothing twice.
 */
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import type { PlanSubscriptions } from '../../producers/plans/subscriptions.js';
import type { Clock } from '../scheduler/clock.js';
import { runScheduler, type Scheduler } from '../scheduler/scheduler.js';

export interface PeriodSchedulerOptions {
  databaseUrl: string;
  log: Logger;
  metrics: Metrics;
  clock?: Clock;
  pollMs?: number;
  standbyPollMs?: number;
}

export function startPeriodScheduler(subscriptions: PlanSubscriptions, opts: PeriodSchedulerOptions): Scheduler {
  const now = () => opts.clock?.now() ?? new Date();
  return runScheduler<{ userId: string; dueAt: Date }>({
    name: 'plans-periods',
    databaseUrl: opts.databaseUrl,
    due: (at, limit) => subscriptions.due(at, limit),
    keyOf: (item) => `${item.userId}@${item.dueAt.toISOString()}`,
    dueAtOf: (item) => item.dueAt,
    fire: async (item) => {
      await subscriptions.advance(item.userId, now());
    },
    log: opts.log,
    metrics: opts.metrics,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
    ...(opts.standbyPollMs ? { standbyPollMs: opts.standbyPollMs } : {}),
  });
}
