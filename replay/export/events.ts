/**
 * A stored message to the events an export writes: their CloudEvents
 * attributes, their writer schema and their Avro bytes exactly as stored. A
 * commit message (`relaygrid.core.Commit.v1`) yields each of its events, with
 * the message's shared attributes (source, time, subject, actor…) and the
 * entry's own id, type and schema. Data is not decoded here: each format reads
 * the bytes its own way (NDJSON straight to JSON text, Avro to values).
 */
import { COMMIT_KEY } from '../../contracts/catalogue.js';
import type { CommitV1 } from '../../contracts/catalogue.generated.js';
import { cloudEventAttributes, EnvelopeError, HEADER, type CloudEventAttributes, type RawMessage } from '../../contracts/envelope.js';
import type { TypeFilter } from './filters.js';
import type { WriterSchema, WriterSchemas } from './writer-schemas.js';

/** The CloudEvents attributes of one event, as its headers carry them. */
export interface EventAttributes extends CloudEventAttributes {
  specversion: string;
  id: string;
  type: string;
  source: string;
  /** `ce-time` verbatim: RFC 3339, as Relaygrid writes it `toISOString()`. */
  time: string;
  dataschema: string;
}

export interface ExportEvent {
  /** Stream sequence (shared by the events of one commit). */
  sequence: number;
  natsSubject: string;
  attributes: EventAttributes;
  writer: WriterSchema;
  /** The event's Avro binary, written with `writer`. */
  bytes: Buffer;
}

/** A message names a schema the export has not loaded: fetch it and read the message again. */
export class MissingSchemaError extends Error {
  constructor(
    readonly fingerprint: string,
    readonly seq: number,
  ) {
    super(`message ${seq}: no schema ${fingerprint} in the schema bucket or this build's catalogue`);
  }
}

export interface ReadMessage {
  /** Every event of the message, kept or not (for progress). */
  scanned: number;
  /** The events `--type` keeps, in order. */
  events: ExportEvent[];
}

const asBuffer = (bytes: Uint8Array): Buffer => (Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));

/** Runs `fn` on an event's data, naming the message and schema when the bytes are not what the schema says. */
export function withData<T>(ev: ExportEvent, fn: (bytes: Buffer) => T): T {
  try {
    return fn(ev.bytes);
  } catch (err) {
    throw new EnvelopeError(`message ${ev.sequence}: event ${ev.attributes.id} does not decode as ${ev.writer.ceType} (${ev.writer.fingerprint}): ${(err as Error).message}`);
  }
}

export class MessageReader {
  constructor(
    private readonly schemas: WriterSchemas,
    private readonly keep: TypeFilter,
  ) {}

  read(msg: RawMessage): ReadMessage {
    const attributes = attributesOf(msg);
    const writer = this.writer(attributes.dataschema, msg.seq);
    if (writer.key === COMMIT_KEY) return this.commit(msg, attributes, writer);
    if (this.keep && !this.keep(attributes.type)) return { scanned: 1, events: [] };
    return { scanned: 1, events: [{ sequence: msg.seq, natsSubject: msg.subject, attributes, writer, bytes: asBuffer(msg.data) }] };
  }

  private commit(msg: RawMessage, shared: EventAttributes, writer: WriterSchema): ReadMessage {
    let commit: CommitV1;
    try {
      commit = writer.type.fromBuffer(asBuffer(msg.data)) as CommitV1;
    } catch (err) {
      throw new EnvelopeError(`message ${msg.seq}: its body does not decode as ${writer.ceType} (${writer.fingerprint}): ${(err as Error).message}`);
    }
    const events: ExportEvent[] = [];
    for (const entry of commit.events) {
      if (this.keep && !this.keep(entry.type)) continue;
      events.push({
        sequence: msg.seq,
        natsSubject: msg.subject,
        attributes: { ...shared, id: entry.id, type: entry.type, dataschema: entry.dataschema },
        writer: this.writer(entry.dataschema, msg.seq),
        bytes: entry.data,
      });
    }
    return { scanned: commit.events.length, events };
  }

  private writer(fingerprint: string, seq: number): WriterSchema {
    const writer = this.schemas.get(fingerprint);
    if (!writer) throw new MissingSchemaError(fingerprint, seq);
    return writer;
  }
}

const REQUIRED = [
  ['specversion', HEADER.specVersion],
  ['id', HEADER.id],
  ['type', HEADER.type],
  ['source', HEADER.source],
  ['time', HEADER.time],
  ['dataschema', HEADER.dataSchema],
] as const;

function attributesOf(msg: RawMessage): EventAttributes {
  const h = cloudEventAttributes(msg);
  if (!h) throw new EnvelopeError(`message ${msg.seq} has no CloudEvents headers`);
  if (h.specversion === undefined || h.id === undefined || h.type === undefined || h.source === undefined || h.time === undefined || h.dataschema === undefined) {
    const [, header] = REQUIRED.find(([name]) => h[name] === undefined)!;
    throw new EnvelopeError(`message ${msg.seq} has no ${header} header`);
  }
  return h as EventAttributes;
}
