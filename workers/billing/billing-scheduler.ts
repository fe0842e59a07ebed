/**
 * Billing's scheduled work (producers/billing/renewals.ts): renewals a day
 * before the expiry, dunning retries, the end of a grace period, and paid
 * orders a dead process left unfulfilled. One leader fires (the scheduler's
 * advisory lock); every firing is idempotent by its occurrence.
 */
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import type { Renewals, BillingDue } from '../../producers/billing/renewals.js';
import type { Clock } from '../scheduler/clock.js';
import { runScheduler, type Scheduler } from '../scheduler/scheduler.js';

export interface BillingSchedulerOptions {
  databaseUrl: string;
  log: Logger;
  metrics: Metrics;
  clock?: Clock;
  pollMs?: number;
}

function keyOf(item: BillingDue): string {
  switch (item.kind) {
    case 'renew':
      return `renew:${item.userId}@${item.expiresAt.toISOString()}`;
    case 'retry':
      return `retry:${item.orderId}#${item.attempt}`;
    case 'overdue':
      return `overdue:${item.userId}:${item.invoiceId}`;
    case 'settle':
      return `settle:${item.orderId}`;
  }
}

export function startBillingScheduler(renewals: Renewals, opts: BillingSchedulerOptions): Scheduler {
  const now = () => opts.clock?.now() ?? new Date();
  return runScheduler<BillingDue>({
    name: 'billing',
    databaseUrl: opts.databaseUrl,
    due: (at, limit) => renewals.due(at, limit),
    keyOf,
    dueAtOf: (item) => item.dueAt,
    fire: (item) => renewals.fire(item, now()),
    log: opts.log,
    metrics: opts.metrics,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
  });
}
