/**
 * The webhook delivery worker (fleet worker role; docs/billing-webhooks.md).
 *
 * - Feeders (./webhook-outbox.ts) follow the billing and plans streams from
 *   their checkpoints and queue one delivery per (cause event, endpoint) in
 *   the Postgres outbox, keyed by the derived webhook id.
 * - The sender is the generic scheduler (workers/scheduler): due deliveries
 *   (`next_attempt_at <= now`) fired by one leader with hot standbys, keyed
 *   by (webhook id, attempt), on the injectable clock.
 *
 * An attempt is claimed before it is sent — its number and the time of the
 * next attempt are committed first — and its answer recorded after. A crash
 * (or a lost lock) between the send and the record therefore costs at most
 * one resend, with the same webhook-id and body, at the next retry time, and
 * it counts as an attempt: the schedule is never exceeded. The delivery log
 * shows such an attempt with no answer. Receivers deduplicate on webhook-id.
 *
 * 2xx delivers; 410 Gone fails the delivery and disables the endpoint (an
 * event), cancelling its other pending deliveries; a timeout, a refused
 * connection or any other status is a failed attempt, retried on the
 * schedule (./webhook-retries.ts) until the last, which fails the delivery.
 */
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import { webhookContexts } from '../../producers/billing/webhook-events.js';
import { signWebhook } from '../../producers/billing/webhook-signing.js';
import type { Webhooks } from '../../producers/billing/webhooks.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { Projector, type ProjectorDeps } from '../../projectors/runtime/projector.js';
import { systemClock, type Clock } from '../scheduler/clock.js';
import { runScheduler, type Scheduler } from '../scheduler/scheduler.js';
import { outboxProjection } from './webhook-outbox.js';
import { MAX_ATTEMPTS, nextAttemptAt } from './webhook-retries.js';
import { postWebhook, type SendResult } from './webhook-sender.js';

export const WEBHOOK_SCHEDULER = 'billing-webhooks';

export interface WebhookDeliveryOptions {
  /** What a Projector needs from the process, but the projection (infra/roles/projectors.ts projectorDeps). */
  projector: Omit<ProjectorDeps, 'projection'>;
  watcher: Pick<CheckpointWatcher, 'onMove'>;
  /** An attempt with no answer within this long has failed (RG_WEBHOOK_TIMEOUT_MS). */
  timeoutMs: number;
  clock?: Clock;
  /** The retries' jitter (default Math.random). */
  random?: () => number;
  log?: Logger;
  pollMs?: number;
  standbyPollMs?: number;
  /** Attempts in flight at once (default 16): a receiver that times out holds one. */
  concurrency?: number;
}

export interface WebhookDelivery {
  scheduler: Scheduler;
  feeders: Projector[];
  close(): Promise<void>;
}

interface Due {
  webhookId: string;
  attempts: number;
  dueAt: Date;
}

type Outcome = 'delivered' | 'retrying' | 'failed' | 'gone' | 'cancelled';

/** How an attempt's answer reads in the log: null for a 2xx. */
function errorOf(result: SendResult): string | null {
  if ('failure' in result) return result.failure;
  return result.statusCode >= 200 && result.statusCode < 300 ? null : `http_${result.statusCode}`;
}

class Sender {
  constructor(
    private readonly webhooks: Webhooks,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly clock: Clock,
    private readonly random: () => number,
    private readonly timeoutMs: number,
  ) {}

  private get db() {
    return this.webhooks.deps.db;
  }

  private count(outcome: Outcome): void {
    this.metrics.webhookDeliveries.inc({ outcome });
  }

  async due(now: Date, limit: number): Promise<Due[]> {
    const rows = await this.db
      .selectFrom('webhook_deliveries')
      .select(['webhook_id', 'attempts', 'next_attempt_at'])
      .where('status', '=', 'pending')
      .where('next_attempt_at', '<=', now)
      .orderBy('next_attempt_at')
      .limit(limit)
      .execute();
    const depth = await this.db.selectFrom('webhook_deliveries').select((eb) => eb.fn.countAll<string>().as('n')).where('status', '=', 'pending').executeTakeFirstOrThrow();
    this.metrics.webhookQueueDepth.set(Number(depth.n));
    return rows.map((r) => ({ webhookId: r.webhook_id, attempts: r.attempts, dueAt: r.next_attempt_at! }));
  }

  /** Ends a pending delivery (only as it stood when fired: a later attempt's state is never overwritten). */
  private async finish(item: Due, status: 'failed' | 'cancelled' | 'delivered', reason: string | null, at: Date): Promise<void> {
    await this.db
      .updateTable('webhook_deliveries')
      .set({ status, final_reason: reason, next_attempt_at: null, finished_at: at })
      .where('webhook_id', '=', item.webhookId)
      .where('status', '=', 'pending')
      .where('attempts', '=', item.attempts)
      .execute();
  }

  async fire(item: Due): Promise<void> {
    const now = this.clock.now();
    const delivery = await this.db
      .selectFrom('webhook_deliveries as d')
      .leftJoin('webhook_endpoints as e', 'e.id', 'd.endpoint_id')
      .select(['d.endpoint_id', 'd.payload', 'd.status', 'd.attempts', 'e.url', 'e.status as endpoint_status', 'e.secret_version'])
      .where('d.webhook_id', '=', item.webhookId)
      .executeTakeFirst();
    // Done meanwhile, or already attempted further (a stale item): nothing to do.
    if (!delivery || delivery.status !== 'pending' || delivery.attempts !== item.attempts) return;
    if (delivery.endpoint_status !== 'active' || !delivery.url || delivery.secret_version === null) {
      await this.finish(item, 'cancelled', delivery.endpoint_status === 'disabled' ? 'endpoint_disabled' : 'endpoint_deleted', now);
      this.count('cancelled');
      return;
    }
    if (item.attempts >= MAX_ATTEMPTS) {
      // The last attempt was claimed but its answer never recorded (the worker stopped): that was the last try.
      await this.finish(item, 'failed', 'no_answer_recorded', now);
      this.count('failed');
      return;
    }
    const attempt = item.attempts + 1;
    // After the last attempt, a moment to record its answer; if it never is, the branch above ends the delivery.
    const next = nextAttemptAt(attempt, now, this.random) ?? new Date(now.getTime() + this.timeoutMs + 60_000);
    const claimed = await this.db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('webhook_deliveries')
        .set({ attempts: attempt, next_attempt_at: next })
        .where('webhook_id', '=', item.webhookId)
        .where('status', '=', 'pending')
        .where('attempts', '=', item.attempts)
        .executeTakeFirst();
      if (updated.numUpdatedRows !== 1n) return false;
      await trx.insertInto('webhook_attempts').values({ webhook_id: item.webhookId, attempt, started_at: now }).execute();
      return true;
    });
    if (!claimed) return;

    const secrets = await this.webhooks.signingSecrets(delivery.endpoint_id, delivery.secret_version, now);
    const headers = signWebhook(secrets, item.webhookId, now, delivery.payload);
    const timer = this.metrics.webhookAttemptSeconds.startTimer();
    const result = await postWebhook(delivery.url, headers, delivery.payload, { timeoutMs: this.timeoutMs, policy: this.webhooks.policy });
    timer();
    const at = this.clock.now();
    const statusCode = 'statusCode' in result ? result.statusCode : null;
    const error = errorOf(result);
    await this.db
      .updateTable('webhook_attempts')
      .set({ finished_at: at, status_code: statusCode, latency_ms: result.latencyMs, error })
      .where('webhook_id', '=', item.webhookId)
      .where('attempt', '=', attempt)
      .execute();
    const claim = { ...item, attempts: attempt };
    if (statusCode !== null) await this.db.updateTable('webhook_deliveries').set({ last_status_code: statusCode }).where('webhook_id', '=', item.webhookId).execute();
    if (error === null) {
      await this.finish(claim, 'delivered', null, at);
      this.count('delivered');
      return;
    }
    const context = { webhookId: item.webhookId, endpointId: delivery.endpoint_id, attempt, error, ...('detail' in result ? { detail: result.detail } : {}) };
    if (statusCode === 410) {
      // The receiver says the endpoint is gone for good: stop sending it anything.
      await this.webhooks.disable(delivery.endpoint_id, 'gone', item.webhookId, at);
      await this.finish(claim, 'failed', 'endpoint_gone', at);
      await this.db
        .updateTable('webhook_deliveries')
        .set({ status: 'cancelled', final_reason: 'endpoint_disabled', next_attempt_at: null, finished_at: at })
        .where('endpoint_id', '=', delivery.endpoint_id)
        .where('status', '=', 'pending')
        .execute();
      this.count('gone');
      this.log.warn(context, 'webhook endpoint answered 410 Gone: disabled');
      return;
    }
    if (attempt >= MAX_ATTEMPTS) {
      await this.finish(claim, 'failed', 'attempts_exhausted', at);
      this.count('failed');
      this.log.warn(context, 'webhook delivery failed for good');
      return;
    }
    this.count('retrying');
    this.log.info({ ...context, nextAttemptAt: next.toISOString() }, 'webhook attempt failed; retrying');
  }
}

export async function startWebhookDelivery(webhooks: Webhooks, opts: WebhookDeliveryOptions): Promise<WebhookDelivery> {
  const clock = opts.clock ?? systemClock;
  const log = (opts.log ?? opts.projector.log).child({ worker: 'webhooks' });
  const deps = { ...opts.projector, log };
  const feeders = webhookContexts().map((context) => new Projector({ ...deps, projection: outboxProjection(context, deps.names, clock) }));
  const running = feeders.map((f) => f.run());
  const sender = new Sender(webhooks, deps.metrics, log, clock, opts.random ?? Math.random, opts.timeoutMs);
  const scheduler = runScheduler<Due>({
    name: WEBHOOK_SCHEDULER,
    databaseUrl: deps.databaseUrl,
    due: (now, limit) => sender.due(now, limit),
    keyOf: (item) => `${item.webhookId}#${item.attempts}`,
    dueAtOf: (item) => item.dueAt,
    fire: (item) => sender.fire(item),
    log,
    metrics: deps.metrics,
    clock,
    concurrency: opts.concurrency ?? 16,
    ...(opts.pollMs ? { pollMs: opts.pollMs } : {}),
    ...(opts.standbyPollMs ? { standbyPollMs: opts.standbyPollMs } : {}),
  });
  // A committed batch of a feeder may have queued something: look at once rather than at the next poll.
  const unsubscribe = await opts.watcher.onMove(
    feeders.map((f) => f.name),
    () => scheduler.wake(),
  );
  return {
    scheduler,
    feeders,
    close: async () => {
      unsubscribe();
      await scheduler.close();
      await Promise.all(feeders.map((f) => f.close()));
      await Promise.all(running);
    },
  };
}

