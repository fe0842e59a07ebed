/**
 * The record type of an Avro export file: `relaygrid.export.ExportedEvent`,
 * the CloudEvents attributes and stream position of an event around its data,
 * whose schema is the event's writer schema verbatim.
 *
 * Records are written with the event's bytes as stored. `data` is the last
 * field and a record's encoding is its fields' encodings in order, so the
 * encoded attributes followed by the stored bytes are exactly the encoding of
 * the envelope with the decoded event, without decoding and encoding each
 * event again (3 µs of the 8 µs an Avro export spent per event). avsc has no
 * public hook for that: the file type is a derived object with its own
 * internal `_write`, and a check when the module loads compares its output with
 * avsc's own encoding; should avsc ever change, every event is decoded and
 * written the plain way.
 */
import avro from 'avsc';
import type { Schema, Type } from 'avsc';
import { avroType } from '../../contracts/avro-types.js';
import type { ExportEvent } from './events.js';
import { withData } from './events.js';

const nullableString = { type: ['null', 'string'], default: null };

const ATTRIBUTE_FIELDS = [
  { name: 'specversion', type: 'string' },
  { name: 'id', type: 'string', doc: 'ce-id: the event id (UUIDv7)' },
  { name: 'type', type: 'string', doc: 'ce-type: relaygrid.<context>.<Event>.v<N>' },
  { name: 'source', type: 'string' },
  { name: 'time', type: 'string', doc: 'ce-time verbatim (RFC 3339, UTC, milliseconds)' },
  { name: 'subject', ...nullableString, doc: 'ce-subject: the aggregate id' },
  { name: 'dataschema', type: 'string', doc: 'sha256:<hex> fingerprint of the writer schema of data' },
  { name: 'actor', ...nullableString },
  { name: 'correlationid', ...nullableString },
  { name: 'causationid', ...nullableString },
  { name: 'traceparent', ...nullableString },
  { name: 'sequence', type: 'long', doc: 'stream sequence of the message (shared by the events of one commit)' },
  { name: 'natsSubject', type: 'string', doc: 'the NATS subject the message was stored under' },
];

const NAME = { type: 'record', name: 'ExportedEvent', namespace: 'relaygrid.export' } as const;

/** The file schema for events written with `writer`: the envelope around the writer schema, verbatim. */
export function envelopeSchema(writer: Schema): Schema {
  return {
    ...NAME,
    doc: 'One event exported by `relaygrid replay export`: its CloudEvents attributes as its headers carried them, its stream position, and its data in its writer schema.',
    fields: [...ATTRIBUTE_FIELDS, { name: 'data', type: writer }],
  };
}

/**
 * The envelope without `data`: what precedes the stored bytes. avsc's own long
 * (a number) is enough for stream sequences and spares a bigint and an 8-byte
 * buffer per record; the full type keeps Relaygrid's bigint long.
 */
const attributesType = avro.Type.forSchema({ ...NAME, fields: ATTRIBUTE_FIELDS }, { wrapUnions: 'auto' });

/** The attribute fields of an event's record; `sequence` as the type that writes it wants it. */
function attributes(ev: ExportEvent, sequence: number | bigint): Record<string, unknown> {
  const a = ev.attributes;
  return {
    specversion: a.specversion,
    id: a.id,
    type: a.type,
    source: a.source,
    time: a.time,
    subject: a.subject ?? null,
    dataschema: a.dataschema,
    actor: a.actor ?? null,
    correlationid: a.correlationid ?? null,
    causationid: a.causationid ?? null,
    traceparent: a.traceparent ?? null,
    sequence,
    natsSubject: ev.natsSubject,
  };
}

/** avsc's internal write path: a type writes a value into a Tap; a Tap copies raw bytes with writeFixed. */
interface Tap {
  writeFixed(buf: Buffer, len: number): void;
}
interface Writable {
  _write(tap: Tap, value: unknown): void;
}

interface StoredRecord {
  attributes: Record<string, unknown>;
  bytes: Buffer;
}

/** `type`, writing a StoredRecord. avsc freezes its types, so this is a derived object whose one own property is the write. */
function writingStored(type: Type): Type {
  const head = attributesType as unknown as Writable;
  const derived = Object.create(type) as Type;
  Object.defineProperty(derived, '_write', {
    value: (tap: Tap, value: unknown) => {
      const record = value as StoredRecord;
      head._write(tap, record.attributes);
      tap.writeFixed(record.bytes, record.bytes.length);
    },
  });
  return derived;
}

/** Whether writing stored bytes gives avsc's own encoding, checked once on a probe event. */
const STORED_BYTES_WORK = ((): boolean => {
  try {
    const probe = avroType({ type: 'record', name: 'Probe', namespace: 'relaygrid.export', fields: [{ name: 'n', type: 'long' }, { name: 's', type: ['null', 'string'] }] });
    const data = { n: -9_223_372_036_854_775_808n, s: 'x' };
    const head = { specversion: '1.0', id: 'i', type: 't', source: 's', time: '2026-11-24T10:00:00.000Z', subject: null, dataschema: 'd', actor: 'a', correlationid: null, causationid: null, traceparent: null, natsSubject: 'n' };
    const plain = avroType(envelopeSchema(probe.schema()));
    const stored = writingStored(avroType(envelopeSchema(probe.schema())));
    const sequence = 2 ** 40 + 7;
    return stored.toBuffer({ attributes: { ...head, sequence }, bytes: probe.toBuffer(data) }).equals(plain.toBuffer({ ...head, sequence: BigInt(sequence), data }));
  } catch {
    return false;
  }
})();

export interface EnvelopeWriter {
  /** The type to give avsc's BlockEncoder: its schema is the envelope, its writes take `record(ev)`. */
  type: Type;
  record(ev: ExportEvent): unknown;
}

/** `storedBytes`: copy each event's stored bytes (when this avsc allows it, checked above), else decode and re-encode. */
export function envelopeWriter(writerSchema: Schema, storedBytes = STORED_BYTES_WORK): EnvelopeWriter {
  const type = avroType(envelopeSchema(writerSchema));
  if (storedBytes) return { type: writingStored(type), record: (ev): StoredRecord => ({ attributes: attributes(ev, ev.sequence), bytes: ev.bytes }) };
  return { type, record: (ev) => ({ ...attributes(ev, BigInt(ev.sequence)), data: withData(ev, (bytes): unknown => ev.writer.type.fromBuffer(bytes)) }) };
}
