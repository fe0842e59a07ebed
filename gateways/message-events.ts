/**
 * The metadata the immutable log keeps about messages: sent, delivered,
 * expired, queued for an offline device. Never the ciphertext. Appended after
 * the client has its answer, off the latency path, in batches; a failed append is logged
 * and counted, because losing an analytics record must not fail a delivery
 * that already happened.
 */
import type { DomainEvent } from '../contracts/envelope.js';
import type { EventStore } from '../producers/event-store/event-store.js';
import type { Logger } from '../infra/logger.js';
import type { Metrics } from '../infra/metrics.js';

export type MessageEvent = DomainEvent<'messaging.MessageSent' | 'messaging.MessageDelivered' | 'messaging.MessageExpired' | 'messaging.OfflineMessageQueued'>;

/** A batch is appended when it holds this many events, or this long after its first. */
const BATCH_EVENTS = 200;
const BATCH_MS = 25;

/**
 * Batched per gateway: one commit on `<ns>.evt.messaging.traffic.<gatewayId>`
 * every few milliseconds rather than one JetStream publish per event, because
 * at thousands of messages a second these records would otherwise cost as much
 * as the messages themselves. Each event names its devices and users, so a
 * reader (the push notifier, analytics) filters by field, not by subject.
 */
export class MessageEvents {
  private batch: MessageEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private inFlight = new Set<Promise<void>>();

  constructor(private readonly deps: { store: EventStore; log: Logger; metrics: Metrics; gatewayId: string }) {}

  get subject(): string {
    return this.deps.store.names.aggregate('messaging', 'traffic', this.deps.gatewayId);
  }

  record(events: readonly MessageEvent[]): void {
    this.batch.push(...events);
    if (this.batch.length >= BATCH_EVENTS) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), BATCH_MS);
  }

  /** Appends what is waiting; `close` waits for every append to end. */
  flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const events = this.batch;
    if (events.length === 0) return;
    this.batch = [];
    const { store, log, metrics } = this.deps;
    const append = store.append(this.subject, events, { expectedSeq: null, meta: { source: `relaygrid/gateway/${this.deps.gatewayId}`, actor: `gateway:${this.deps.gatewayId}` } }).then(
      () => metrics.gatewayEvents.inc({ outcome: 'appended' }, events.length),
      (err: unknown) => {
        metrics.gatewayEvents.inc({ outcome: 'failed' }, events.length);
        log.warn({ err, count: events.length }, 'message metadata events not recorded');
      },
    );
    this.inFlight.add(append);
    void append.finally(() => this.inFlight.delete(append));
  }

  async close(): Promise<void> {
    this.flush();
    await Promise.all(this.inFlight);
  }
}
