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

type Delivered = { seq: number; subject: string; headers?: MsgHdrs | undefined; data: Uint8Array };

/**
 * A delivered message as the decoders take it, with nats.js's header parsing
 * deferred: they read the stored header block instead when they can. A class,
 * so the deferred `headers` is a prototype getter (an accessor in an object
 * literal made each message cost a slow-path allocation).
 */
class DeliveredMessage implements RawMessage {
  readonly seq: number;
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headerBlock: Uint8Array | undefined;

  constructor(private readonly msg: Delivered) {
    this.seq = msg.seq;
    this.subject = msg.subject;
    this.data = msg.data;
    this.headerBlock = rawHeaderBlock(msg);
  }

  get headers(): MsgHdrs | undefined {
    return this.msg.headers;
  }
}

export function rawMessageOf(msg: Delivered): RawMessage {
  return new DeliveredMessage(msg);
}

/**
 * The CloudEvents attributes a message carries (the first value of each
 * `HEADER`, an empty one as absent), whatever else its headers hold.
 */
export interface CloudEventAttributes {
  specversion: string | undefined;
  id: string | undefined;
  type: string | undefined;
  source: string | undefined;
  time: string | undefined;
  subject: string | undefined;
  dataschema: string | undefined;
  actor: string | undefined;
  correlationid: string | undefined;
  causationid: string | undefined;
  traceparent: string | undefined;
}

type AttributeName = keyof CloudEventAttributes;

const ATTRIBUTE_OF_HEADER = new Map<string, AttributeName>([
  [HEADER.specVersion, 'specversion'],
  [HEADER.id, 'id'],
  [HEADER.type, 'type'],
  [HEADER.source, 'source'],
  [HEADER.time, 'time'],
  [HEADER.subject, 'subject'],
  [HEADER.dataSchema, 'dataschema'],
  [HEADER.actor, 'actor'],
  [HEADER.correlationId, 'correlationid'],
  [HEADER.causationId, 'causationid'],
  [HEADER.traceparent, 'traceparent'],
]);

/** Header names as bytes, by length: a scanned pair's name is compared in place, never cut out as a string. */
const HEADERS_BY_LENGTH: [Buffer, AttributeName][][] = [];
for (const [header, name] of ATTRIBUTE_OF_HEADER) (HEADERS_BY_LENGTH[header.length] ??= []).push([Buffer.from(header, 'latin1'), name]);

/** Always the same shape, so the hot paths see one hidden class. */
function noAttributes(): CloudEventAttributes {
  return { specversion: undefined, id: undefined, type: undefined, source: undefined, time: undefined, subject: undefined, dataschema: undefined, actor: undefined, correlationid: undefined, causationid: undefined, traceparent: undefined };
}

/** Reused from message to message: every reader is synchronous. */
const spans = new HeaderSpans();

function attributeAt(block: Buffer, start: number, end: number): AttributeName | undefined {
  const candidates = HEADERS_BY_LENGTH[end - start];
  if (candidates) for (const [header, name] of candidates) if (block.compare(header, 0, header.length, start, end) === 0) return name;
  return undefined;
}

/** From the stored bytes, when the shared scan accepts the block (infra/nats/raw-headers.ts): ASCII, so latin1 is the exact text. */
function scannedAttributes(block: Uint8Array): CloudEventAttributes | undefined {
  if (block.length === 0 || !scanHeaderBlock(block, spans)) return undefined;
  const buf = Buffer.from(block.buffer, block.byteOffset, block.byteLength);
  const out = noAttributes();
  for (let i = 0; i < 4 * spans.count; i += 4) {
    const name = attributeAt(buf, spans.at[i]!, spans.at[i + 1]!);
    if (name !== undefined && out[name] === undefined) out[name] = buf.toString('latin1', spans.at[i + 2], spans.at[i + 3]) || undefined;
  }
  return out;
}

/** Through nats.js: MsgHdrs.get() scans every key on each call, so one pass over the pairs instead. */
function decodedAttributes(h: MsgHdrs): CloudEventAttributes {
  const out = noAttributes();
  for (const [key, values] of h) {
    const name = ATTRIBUTE_OF_HEADER.get(key);
    if (name !== undefined && out[name] === undefined) out[name] = values[0] || undefined;
  }
  return out;
}

/**
 * A message's CloudEvents attributes, or undefined when it has no headers at
 * all: from the stored header block when the reader has it (nats.js's header
 * parser was the largest cost of reading a stream), else from `headers`.
 */
export function cloudEventAttributes(msg: Pick<RawMessage, 'headers' | 'headerBlock'>): CloudEventAttributes | undefined {
  const scanned = msg.headerBlock ? scannedAttributes(msg.headerBlock) : undefined;
  if (scanned) return scanned;
  const headers = msg.headers;
  return headers ? decodedAttributes(headers) : undefined;
}

function required(attrs: CloudEventAttributes, name: 'id' | 'type' | 'dataschema' | 'time', seq: number): string {
  const value = attrs[name];
  if (!value) throw new EnvelopeError(`message ${seq} has no ce-${name} header`);
  return value;
}

function metaOf(attrs: CloudEventAttributes): EventMeta {
  return { source: attrs.source ?? '', actor: attrs.actor, correlationId: attrs.correlationid, causationId: attrs.causationid, traceparent: attrs.traceparent };
}

/** Decodes a message into its events (one, or the entries of a commit), in order. */
export function decodeMessage(registry: SchemaRegistry, msg: RawMessage): StoredEvent[] {
  const attrs = cloudEventAttributes(msg);
  if (!attrs) throw new EnvelopeError(`message ${msg.seq} has no CloudEvents headers`);
  const id = required(attrs, 'id', msg.seq);
  const ceType = required(attrs, 'type', msg.seq);
  const fingerprint = required(attrs, 'dataschema', msg.seq);
  const time = new Date(required(attrs, 'time', msg.seq));
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
