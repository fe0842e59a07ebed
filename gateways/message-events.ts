/**
 * The metadata the immutable log keeps about messages: sent, delivered,
 * expired, queued for an offline device. Never the ciphertext. Appended after
 * the client has its answer, off the latency path; a failed append is logged
 * and counted, because losing an analytics record must not fail a delivery
 * that already happened.
 */
import type { DomainEvent } from '../contracts/envelope.js';
import type { EventStore } from '../producers/event-store/event-store.js';
import type { Logger } from '../infra/logger.js';
import type { Metrics } from '../infra/metrics.js';

export type MessageEvent = DomainEvent<'messaging.MessageSent' | 'messaging.MessageDelivered' | 'messaging.MessageExpired' | 'messaging.OfflineMessageQueued'>;

export class MessageEvents {
  constructor(
    private readonly deps: { store: EventStore; log: Logger; metrics: Metrics; gatewayId: string },
  ) {}

  /** Records events about one aggregate: the sending device's outbox or a receiving device's mailbox. */
  record(aggregate: 'outbox' | 'mailbox', deviceId: string, events: MessageEvent[], actor: string): void {
    if (events.length === 0) return;
    const { store, log, metrics } = this.deps;
    const subject = store.names.aggregate('messaging', aggregate, deviceId);
    store.append(subject, events, { expectedSeq: null, meta: { source: `relaygrid/gateway/${this.deps.gatewayId}`, actor } }).then(
      () => metrics.gatewayEvents.inc({ outcome: 'appended' }, events.length),
      (err: unknown) => {
        metrics.gatewayEvents.inc({ outcome: 'failed' }, events.length);
        log.warn({ err, subject, types: events.map((e) => e.type) }, 'message metadata event not recorded');
      },
    );
  }
}
