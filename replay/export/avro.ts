/**
 * Avro export: `--out` is a directory with one Object Container File per
 * writer schema, named `<context>.<Event>.v<N>.avro` — so versions of one event
 * are never mixed in a file and no value is resolved or defaulted. Each record
 * is a `relaygrid.export.ExportedEvent` envelope (envelope-type.ts): the
 * CloudEvents attributes, `sequence` and `natsSubject` (the same fields, in the
 * same order, as an NDJSON line), and `data`, whose schema is the event's
 * writer schema as published in the schema bucket. Any Avro reader opens the files unaided: the
 * schema is in the header, with the metadata `relaygrid.stream`,
 * `relaygrid.from`, `relaygrid.to` (the exported sequence range, inclusive),
 * `relaygrid.fingerprints` (JSON array of the writer fingerprints in the file),
 * `relaygrid.type` and, with `--subject`, `relaygrid.filter.subject`.
 */
import { join } from 'node:path';
import avro from 'avsc';
import type { Type } from 'avsc';
import { fingerprintHex } from '../../contracts/codec.js';
import { envelopeWriter, type EnvelopeWriter } from './envelope-type.js';
import type { ExportEvent } from './events.js';
import { drainOrClose, FileWriter, pendingDirectory, type PendingOutput } from './output.js';
import type { ExportSink, WrittenFile } from './sink.js';
import type { WriterSchema } from './writer-schemas.js';

export interface AvroExportMetadata {
  stream: string;
  from: number;
  to: number;
  subjectFilter?: string | undefined;
}

/** One container file: avsc's BlockEncoder into our own file stream, whose errors we can catch (createFileEncoder's we could not). */
class ContainerFile {
  private readonly encoder: avro.streams.BlockEncoder;
  private readonly file: FileWriter;
  private failure: Error | undefined;
  events = 0;

  constructor(
    readonly path: string,
    out: string,
    readonly envelope: EnvelopeWriter,
    metadata: Record<string, Buffer>,
  ) {
    const type: Type = envelope.type;
    this.file = new FileWriter(path, out);
    // Given a Type (not a schema), BlockEncoder encodes with it — so bigint longs and Date timestamps — and
    // writes its full schema (docs, defaults, logical types) to the header.
    // `metadata` is a BlockEncoder option avsc's typings omit, hence the variable rather than a literal.
    const options = { metadata, codec: 'null' };
    this.encoder = new avro.streams.BlockEncoder(type, options);
    this.encoder.on('error', (err: Error) => {
      this.failure ??= err;
      this.file.destroy(); // the pipe would never end it now
    });
    this.encoder.pipe(this.file.raw);
  }

  write(record: unknown): void | Promise<void> {
    if (this.failure) throw this.failure;
    this.file.throwIfFailed();
    this.events++;
    if (!this.encoder.write(record)) return this.drained();
  }

  private async drained(): Promise<void> {
    // A file that failed never drains the encoder: its close ends the wait, and its error is thrown.
    await drainOrClose(this.encoder, this.file.raw);
    if (this.failure) throw this.failure;
    this.file.throwIfFailed();
  }

  async close(): Promise<void> {
    this.encoder.end();
    // The pipe ends the file once the encoder has pushed its last block.
    await this.file.close(false);
    if (this.failure) throw this.failure;
  }

  destroy(): void {
    this.encoder.destroy();
    this.file.destroy();
  }
}

/** `relaygrid.identity.UserRegistered.v3` → `identity.UserRegistered.v3` (anything else made safe as a file name). */
function baseName(ceType: string): string {
  return ceType.replace(/^relaygrid\./, '').replace(/[^A-Za-z0-9._-]/g, '_');
}

export class AvroSink implements ExportSink {
  private readonly files = new Map<string, ContainerFile>();
  private readonly names = new Set<string>();

  private constructor(
    private readonly out: string,
    private readonly pending: PendingOutput,
    private readonly meta: AvroExportMetadata,
  ) {}

  static async open(out: string, meta: AvroExportMetadata): Promise<AvroSink> {
    return new AvroSink(out, await pendingDirectory(out), meta);
  }

  write(ev: ExportEvent): void | Promise<void> {
    const file = this.fileOf(ev.writer);
    return file.write(file.envelope.record(ev));
  }

  private fileOf(writer: WriterSchema): ContainerFile {
    let file = this.files.get(writer.fingerprint);
    if (!file) {
      let name = `${baseName(writer.ceType)}.avro`;
      // Two schemas under one CloudEvents type should not exist; if they do, keep them apart.
      if (this.names.has(name)) name = `${baseName(writer.ceType)}.${fingerprintHex(writer.fingerprint).slice(0, 12)}.avro`;
      this.names.add(name);
      const metadata: Record<string, Buffer> = {
        'relaygrid.stream': Buffer.from(this.meta.stream),
        'relaygrid.from': Buffer.from(String(this.meta.from)),
        'relaygrid.to': Buffer.from(String(this.meta.to)),
        'relaygrid.fingerprints': Buffer.from(JSON.stringify([writer.fingerprint])),
        'relaygrid.type': Buffer.from(writer.ceType),
      };
      if (this.meta.subjectFilter) metadata['relaygrid.filter.subject'] = Buffer.from(this.meta.subjectFilter);
      file = new ContainerFile(join(this.pending.partial, name), this.out, envelopeWriter(writer.schema), metadata);
      this.files.set(writer.fingerprint, file);
    }
    return file;
  }

  async finish(): Promise<WrittenFile[]> {
    const files = [...this.files.values()];
    await Promise.all(files.map((f) => f.close()));
    await this.pending.commit();
    return files.map((f) => ({ path: join(this.out, f.path.slice(this.pending.partial.length + 1)), events: f.events })).sort((a, b) => a.path.localeCompare(b.path));
  }

  async abort(): Promise<void> {
    for (const f of this.files.values()) f.destroy();
    await this.pending.discard();
  }
}
