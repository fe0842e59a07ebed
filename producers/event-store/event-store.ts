/**
 * The event store: appends decisions to an aggregate's subject with optimistic
 * concurrency (through the append guard, see append-guard.ts) and reads an
 * aggregate back with an ordered consumer filtered on its one subject.
 */
import type { JsMsg } from '@nats-io/jetstream';
import { SpanKind } from '@opentelemetry/api';
import { TimeoutError, NoRespondersError, type MsgHdrs } from '@nats-io/transport-node';
import type { SchemaRegistry } from '../../contracts/codec.js';
import { decodeMessage, encodeDecision, rawMessageOf, type DomainEvent, type EventMeta, type StoredEvent } from '../../contracts/envelope.js';
import { uuidv7 } from '../../contracts/ids.js';
import type { Nats } from '../../infra/nats/connection.js';
import type { Names } from '../../infra/naming.js';
import { contextFromTraceparent, inSpan, traceparentOf } from '../../infra/tracing.js';
import { AppendGuard } from './append-guard.js';

/** Publishing again with the same Nats-Msg-Id is safe inside the stream's duplicate window. */
const TRANSIENT_PUBLISH_RETRIES = 3;

export interface AppendOptions {
  /**
   * The subject's last sequence as the decision saw it; 0 = the aggregate must not exist yet.
   * null = no expectation: for records of what happened (message metadata) that no decision guards.
   */
  expectedSeq: number | null;
  meta: EventMeta;
  /** Event ids to use (a retry of the same decision must reuse them); generated when absent. */
  ids?: string[];
  time?: Date;
  /** The caller minted the aggregate's id just now: nothing can be stored under it, so the guard is claimed without reading first. */
  fresh?: boolean;
}

export interface AppendResult {
  /** Stream sequence of the message that holds the events. */
  seq: number;
  /** True when JetStream had already stored a message with this id: nothing new was written. */
  duplicate: boolean;
  ids: string[];
}

function isTransient(err: unknown): boolean {
  return err instanceof TimeoutError || err instanceof NoRespondersError;
}

export class EventStore {
  private readonly guard: AppendGuard;

  constructor(
    private readonly nats: Nats,
    readonly names: Names,
    readonly registry: SchemaRegistry,
  ) {
    this.guard = new AppendGuard(nats, names, (subject, body, msgID, headers, expect) => this.publish(subject, body, msgID, headers, expect));
  }

  /**
   * Appends in a `send <subject>` span, a child of the caller's trace context
   * (the request's): the events carry the span's context, so what consumes
   * them (projectors, the audit worker) hangs under the append.
   */
  append(subject: string, events: readonly DomainEvent[], opts: AppendOptions): Promise<AppendResult> {
    const parent = contextFromTraceparent(opts.meta.traceparent);
    const attributes = { 'messaging.system': 'nats', 'messaging.operation.type': 'send', 'messaging.destination.name': subject, 'messaging.batch.message_count': events.length };
    return inSpan(`send ${subject}`, parent, async (span, ctx) => {
      const result = await this.appendNow(subject, events, { ...opts, meta: { ...opts.meta, traceparent: traceparentOf(ctx) ?? opts.meta.traceparent } });
      span.setAttribute('relaygrid.append.seq', result.seq);
      if (result.duplicate) span.setAttribute('relaygrid.append.duplicate', true);
      return result;
    }, { kind: SpanKind.PRODUCER, attributes });
  }

  private async appendNow(subject: string, events: readonly DomainEvent[], opts: AppendOptions): Promise<AppendResult> {
    const { id: aggregateId } = this.names.parse(subject);
    const time = opts.time ?? new Date();
    const ids = opts.ids ?? events.map(() => uuidv7(time.getTime()));
    const outgoing = events.map((event, i) => ({ id: ids[i] ?? uuidv7(), event, time }));
    const message = encodeDecision(this.registry, aggregateId, outgoing, opts.meta);
    if (opts.expectedSeq === null) {
      const ack = await this.publish(subject, message.body, message.id, message.headers);
      return { seq: ack.seq, duplicate: ack.duplicate, ids };
    }
    const claimed = await this.guard.claim(subject, opts.expectedSeq, message, opts.fresh ?? false);
    if (claimed.storedAt !== undefined) return { seq: claimed.storedAt, duplicate: true, ids };
    const ack = await this.publish(subject, message.body, message.id, message.headers);
    this.guard.stored(subject, ack.seq, claimed.guardSeq);
    return { seq: ack.seq, duplicate: ack.duplicate, ids };
  }

  /** One JetStream publish, retried on timeouts: the message id makes a retry a duplicate, never a second copy. */
  private async publish(subject: string, body: Uint8Array, msgID: string, headers: MsgHdrs, expect?: { lastSubjectSequence: number }) {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.nats.js.publish(subject, body, { msgID, headers, ...(expect ? { expect } : {}) });
      } catch (err) {
        if (!isTransient(err) || attempt >= TRANSIENT_PUBLISH_RETRIES) throw err;
      }
    }
  }

  /** The sequence of the subject's last message, 0 when it has none (a direct get, no consumer). */
  async lastSequence(subject: string): Promise<number> {
    const { stream } = this.names.parse(subject);
    const last = await this.nats.jsm.direct.getMessage(stream, { last_by_subj: subject });
    return last?.seq ?? 0;
  }

  /** Every event of one aggregate after `afterSeq`, in order, through an ordered consumer. */
  async read(subject: string, afterSeq = 0): Promise<{ events: StoredEvent[]; lastSeq: number }> {
    const { stream } = this.names.parse(subject);
    const lastSeq = await this.lastSequence(subject);
    if (lastSeq <= afterSeq) return { events: [], lastSeq: Math.max(lastSeq, afterSeq) };
    const consumer = await this.nats.js.consumers.get(stream, { filter_subjects: subject, opt_start_seq: afterSeq + 1 });
    const messages = await consumer.consume({ max_messages: 256 });
    const events: StoredEvent[] = [];
    try {
      for await (const msg of messages) {
        events.push(...this.decode(msg));
        if (msg.seq >= lastSeq) break;
      }
    } finally {
      await messages.close();
    }
    return { events, lastSeq };
  }

  decode(msg: JsMsg): StoredEvent[] {
    return decodeMessage(this.registry, rawMessageOf(msg));
  }
}
