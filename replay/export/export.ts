/**
 * An export from start to end: resolve the range, check the filters, read the
 * range in order (readRange: an ordered consumer), turn each message into its
 * events and hand them to the sink of the format. On any failure the partial
 * output is removed.
 */
import type { JsMsg } from '@nats-io/jetstream';
import { rawMessageOf } from '../../contracts/envelope.js';
import type { Runtime } from '../../infra/runtime.js';
import { readRange, resolveRange, type SeqRange } from '../range.js';
import type { ExportOptions } from './args.js';
import { AvroSink } from './avro.js';
import { MessageReader, MissingSchemaError, type ReadMessage } from './events.js';
import { checkSubjectFilter, typeFilter } from './filters.js';
import { NdjsonSink } from './ndjson.js';
import type { ExportSink, WrittenFile } from './sink.js';
import { WriterSchemas } from './writer-schemas.js';

export interface ExportHooks {
  /** Called once the range is known, before reading. */
  onRange?(range: SeqRange): void;
  /** After each message: its stream sequence. */
  onProgress?(seq: number): void;
}

export interface ExportResult {
  range: SeqRange;
  /** Events in the messages read (before `--type`). */
  scanned: number;
  /** Events written. */
  exported: number;
  files: WrittenFile[];
}

/** Messages per pull of the ordered consumer. */
export const EXPORT_BATCH = 2048;

export async function exportRange(rt: Pick<Runtime, 'nats' | 'names' | 'registry'>, opts: ExportOptions, hooks: ExportHooks = {}): Promise<ExportResult> {
  const range = await resolveRange(rt, opts.stream, opts.from, opts.to);
  checkSubjectFilter(opts.stream, range.subjects ?? [], opts.subject);
  const schemas = await WriterSchemas.load(rt);
  const reader = new MessageReader(schemas, typeFilter(opts.types, schemas));
  const sink: ExportSink =
    opts.format === 'avro'
      ? await AvroSink.open(opts.out, { stream: range.stream, from: range.from, to: range.to, subjectFilter: opts.subject })
      : await NdjsonSink.open(opts.out);
  hooks.onRange?.(range);
  let scanned = 0;
  let exported = 0;

  const write = (read: ReadMessage): void | Promise<void> => {
    scanned += read.scanned;
    for (let i = 0; i < read.events.length; i++) {
      exported++;
      const pending = sink.write(read.events[i]!);
      // Backpressure is rare (a full file buffer): stay synchronous until it happens.
      if (pending) return pending.then(() => writeFrom(read, i + 1));
    }
  };
  const writeFrom = async (read: ReadMessage, start: number): Promise<void> => {
    for (let i = start; i < read.events.length; i++) {
      exported++;
      await sink.write(read.events[i]!);
    }
  };
  const onMessage = (msg: JsMsg): void | Promise<void> => {
    hooks.onProgress?.(msg.seq);
    try {
      return write(reader.read(rawMessageOf(msg)));
    } catch (err) {
      if (!(err instanceof MissingSchemaError)) throw err;
      return refetchAndWrite(err, msg);
    }
  };
  // A schema published after the export started: look it up once more, then the message is readable or the export stops.
  const refetchAndWrite = async (missing: MissingSchemaError, msg: JsMsg): Promise<void> => {
    if (!(await schemas.fetch(missing.fingerprint))) throw missing;
    await onMessage(msg);
  };

  try {
    await readRange(rt.nats, range, onMessage, { filter: opts.subject, batch: EXPORT_BATCH });
    const files = await sink.finish();
    return { range, scanned, exported, files };
  } catch (err) {
    await sink.abort().catch(() => undefined);
    throw err;
  }
}
