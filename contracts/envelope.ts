/**
 * CloudEvents' NATS protocol binding in binary mode: attributes travel as
 * `ce-*` headers, the body is the Avro binary of the event alone. Several
 * events of one decision travel as one `relaygrid.core.Commit.v1` message whose
 * entries carry their own id, type and schema.
 */
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { COMMIT_KEY, type EventData, type EventKey } from './catalogue.js';
import type { SchemaRegistry } from './codec.js';
import type { CommitV1 } from './catalogue.generated.js';
import { commitIdOf } from './ids.js';
import { HeaderSpans, rawHeaderBlock, scanHeaderBlock } from '../infra/nats/raw-headers.js';

/** An event as a decider emits it: its catalogue key and current-version data. */
export type DomainEvent<K extends EventKey = EventKey> = { [P in K]: { type: P; data: EventData<P> } }[K];

/** Who and what caused an append; copied into every event's headers. */
export interface EventMeta {
  /** `relaygrid/<role>`, the CloudEvents source. */
  source: string;
  /** The user or service that acted, e.g. `user:<id>`, `system:projector`. */
  actor?: string;
  correlationId?: string;
  causationId?: string;
  /** W3C trace context of the request that caused this event. */
  traceparent?: string;
}

export interface OutgoingEvent {
  id: string;
  event: DomainEvent;
  time: Date;
}

/** Where and when an event was stored, beside its type and data. */
export interface StoredEventInfo {
  /** Stream sequence of the message (shared by the events of one commit). */
  seq: number;
  subject: string;
  id: string;
  ceType: string;
  time: Date;
  meta: EventMeta;
}

/** An event read back from the log. */
export type StoredEvent<K extends EventKey = EventKey> = DomainEvent<K> & StoredEventInfo;

export const HEADER = {
  specVersion: 'ce-specversion',
  id: 'ce-id',
  type: 'ce-type',
  source: 'ce-source',
  time: 'ce-time',
  subject: 'ce-subject',
  dataSchema: 'ce-dataschema',
  contentType: 'content-type',
  actor: 'ce-actor',
  correlationId: 'ce-correlationid',
  causationId: 'ce-causationid',
  traceparent: 'traceparent',
} as const;

export const AVRO_CONTENT_TYPE = 'avro/binary';

export class EnvelopeError extends Error {
  readonly code = 'bad_envelope';
}

export interface EncodedMessage {
  /** The message id (`ce-id` and `Nats-Msg-Id`): the event id, or the commit id. */
  id: string;
  headers: MsgHdrs;
  body: Uint8Array;
}

function baseHeaders(id: string, ceType: string, fingerprint: string, time: Date, aggregateId: string, meta: EventMeta): MsgHdrs {
  // append, not set: the headers are fresh, and set() scans every key twice per call.
  const h = natsHeaders();
  h.append(HEADER.specVersion, '1.0');
  h.append(HEADER.id, id);
  h.append(HEADER.type, ceType);
  h.append(HEADER.source, meta.source);
  h.append(HEADER.time, time.toISOString());
  h.append(HEADER.subject, aggregateId);
  h.append(HEADER.dataSchema, fingerprint);
  h.append(HEADER.contentType, AVRO_CONTENT_TYPE);
  if (meta.actor) h.append(HEADER.actor, meta.actor);
  if (meta.correlationId) h.append(HEADER.correlationId, meta.correlationId);
  if (meta.causationId) h.append(HEADER.causationId, meta.causationId);
  if (meta.traceparent) h.append(HEADER.traceparent, meta.traceparent);
  return h;
}

/**
 * Encodes one decision. A single event is the message and its id the message
 * id; several events become a commit whose id derives from theirs, so a retry
 * with the same event ids is deduplicated by JetStream either way.
 */
export function encodeDecision(
  registry: SchemaRegistry,
  aggregateId: string,
  events: readonly OutgoingEvent[],
  meta: EventMeta,
): EncodedMessage {
  const first = events[0];
  if (!first) throw new EnvelopeError('a decision with no events has nothing to append');
  if (events.length === 1) {
    const { fingerprint, ceType, bytes } = registry.encode(first.event.type, first.event.data);
    return { id: first.id, headers: baseHeaders(first.id, ceType, fingerprint, first.time, aggregateId, meta), body: bytes };
  }
  const commit: CommitV1 = {
    events: events.map(({ id, event }) => {
      const { fingerprint, ceType, bytes } = registry.encode(event.type, event.data);
      return { id, type: ceType, dataschema: fingerprint, data: bytes };
    }),
  };
  const { fingerprint, ceType, bytes } = registry.encode(COMMIT_KEY, commit);
  const commitId = commitIdOf(events.map((e) => e.id));
  return { id: commitId, headers: baseHeaders(commitId, ceType, fingerprint, first.time, aggregateId, meta), body: bytes };
}

/** The parts of a JetStream message the decoder needs. */
export interface RawMessage {
  seq: number;
  subject: string;
  headers?: MsgHdrs | undefined;
  data: Uint8Array;
  /**
   * The stored header block, when the reader has it: its attributes are then
   * scanned from the bytes and `headers` (nats.js's slow parser) is never read.
   */
  headerBlock?: Uint8Array | undefined;
}

/**
 * A delivered message as the decoder takes it, with nats.js's header parsing
 * deferred: decodeMessage reads the stored header block instead when it can.
 */
export function rawMessageOf(msg: { seq: number; subject: string; headers?: MsgHdrs | undefined; data: Uint8Array }): RawMessage {
  return {
    seq: msg.seq,
    subject: msg.subject,
    data: msg.data,
    headerBlock: rawHeaderBlock(msg),
    get headers() {
      return msg.headers;
    },
  };
}

type Attributes = Record<string, string | undefined>;

/**
 * The headers as a plain record, read in one pass: MsgHdrs.get() scans every
 * key on each call, which on the projector's hot path cost more than Avro.
 */
function attributesOf(h: MsgHdrs): Attributes {
  const out: Attributes = {};
  for (const [key, values] of h) out[key] = values[0];
  return out;
}

/** Reused from message to message: decoding is synchronous. */
const spans = new HeaderSpans();

/** The first value of each header, from the stored bytes; undefined when the scan declines the block. */
function scannedAttributes(block: Uint8Array): Attributes | undefined {
  if (block.length === 0 || !scanHeaderBlock(block, spans)) return undefined;
  const buf = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
  const out: Attributes = {};
  for (let i = 0; i < 4 * spans.count; i += 4) {
    // The scan guarantees ASCII, so latin1 is the exact text.
    const name = buf.toString('latin1', spans.at[i], spans.at[i + 1]);
    if (out[name] === undefined) out[name] = buf.toString('latin1', spans.at[i + 2], spans.at[i + 3]);
  }
  return out;
}

function required(attrs: Attributes, name: string, seq: number): string {
  const value = attrs[name];
  if (!value) throw new EnvelopeError(`message ${seq} has no ${name} header`);
  return value;
}

function metaOf(attrs: Attributes): EventMeta {
  const optional = (name: string) => attrs[name] || undefined;
  return {
    source: attrs[HEADER.source] ?? '',
    actor: optional(HEADER.actor),
    correlationId: optional(HEADER.correlationId),
    causationId: optional(HEADER.causationId),
    traceparent: optional(HEADER.traceparent),
  };
}

/** Decodes a message into its events (one, or the entries of a commit), in order. */
export function decodeMessage(registry: SchemaRegistry, msg: RawMessage): StoredEvent[] {
  const scanned = msg.headerBlock ? scannedAttributes(msg.headerBlock) : undefined;
  const headers = scanned ? undefined : msg.headers;
  if (!scanned && !headers) throw new EnvelopeError(`message ${msg.seq} has no CloudEvents headers`);
  const attrs = scanned ?? attributesOf(headers!);
  const id = required(attrs, HEADER.id, msg.seq);
  const ceType = required(attrs, HEADER.type, msg.seq);
  const fingerprint = required(attrs, HEADER.dataSchema, msg.seq);
  const time = new Date(required(attrs, HEADER.time, msg.seq));
  const meta = metaOf(attrs);
  const decoded = registry.decode(fingerprint, msg.data);
  const base = { seq: msg.seq, subject: msg.subject, time, meta };
  if (decoded.key !== COMMIT_KEY) {
    return [{ ...base, id, ceType, type: decoded.key, data: decoded.data } as StoredEvent];
  }
  return (decoded.data as CommitV1).events.map((entry) => {
    const inner = registry.decode(entry.dataschema, entry.data);
    return { ...base, id: entry.id, ceType: entry.type, type: inner.key, data: inner.data } as StoredEvent;
  });
}
