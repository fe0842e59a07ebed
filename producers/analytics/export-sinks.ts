/**
 * Export files written row by row with the stream's backpressure honoured:
 * a write that fills the buffer waits for it to drain, so memory holds a
 * buffer's worth of rows, whatever the size of the export. CSV (RFC 4180,
 * a header line), NDJSON (64-bit counters as decimal strings, times as ISO
 * 8601 UTC, as `replay export` writes them) and an Avro Object Container
 * File (avsc's BlockEncoder, `null` codec, the dataset's record schema in
 * its header).
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { finished } from 'node:stream/promises';
import avro from 'avsc';
import { avroType } from '../../contracts/avro-types.js';
import { avroSchemaOf, type Column, type Dataset, type ExportFormat } from './datasets.js';

/** A row as the cursor reads it: longs as text, times as Dates, nulls as null. */
export type Row = Record<string, string | number | Date | null>;

export interface RowSink {
  write(row: Row): void | Promise<void>;
  end(): Promise<void>;
  destroy(): void;
}

const plain = (v: Row[string]): string | number | null => (v instanceof Date ? v.toISOString() : v);

const csvField = (v: Row[string]): string => {
  const text = v === null ? '' : String(plain(v));
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
};

class TextSink implements RowSink {
  private readonly file: WriteStream;

  constructor(
    path: string,
    private readonly line: (row: Row) => string,
    header?: string,
  ) {
    this.file = createWriteStream(path, { highWaterMark: 256 * 1024 });
    if (header !== undefined) this.file.write(header);
  }

  write(row: Row): void | Promise<void> {
    if (!this.file.write(this.line(row))) return once(this.file, 'drain').then(() => undefined);
  }

  async end(): Promise<void> {
    this.file.end();
    await finished(this.file);
  }

  destroy(): void {
    this.file.destroy();
  }
}

class AvroSink implements RowSink {
  private readonly file: WriteStream;
  private readonly encoder: avro.streams.BlockEncoder;

  constructor(
    path: string,
    dataset: Dataset,
    private readonly columns: readonly Column[],
    personal: boolean,
  ) {
    this.file = createWriteStream(path, { highWaterMark: 256 * 1024 });
    // Given a Type, BlockEncoder encodes bigint longs and Date timestamps and writes the full schema to the header.
    this.encoder = new avro.streams.BlockEncoder(avroType(avroSchemaOf(dataset, personal)), { codec: 'null' });
    this.encoder.pipe(this.file);
  }

  write(row: Row): void | Promise<void> {
    const record: Record<string, unknown> = {};
    for (const c of this.columns) {
      const v = row[c.name] ?? null;
      record[c.name] = v !== null && c.kind === 'long' ? BigInt(v as string) : v;
    }
    if (!this.encoder.write(record)) return once(this.encoder, 'drain').then(() => undefined);
  }

  async end(): Promise<void> {
    this.encoder.end();
    await finished(this.file);
  }

  destroy(): void {
    this.encoder.destroy();
    this.file.destroy();
  }
}

export function openSink(path: string, format: ExportFormat, dataset: Dataset, columns: readonly Column[], personal: boolean): RowSink {
  switch (format) {
    case 'csv':
      return new TextSink(path, (row) => `${columns.map((c) => csvField(row[c.name] ?? null)).join(',')}\r\n`, `${columns.map((c) => c.name).join(',')}\r\n`);
    case 'ndjson':
      return new TextSink(path, (row) => `${JSON.stringify(Object.fromEntries(columns.map((c) => [c.name, plain(row[c.name] ?? null)])))}\n`);
    case 'avro':
      return new AvroSink(path, dataset, columns, personal);
  }
}

export const CONTENT_TYPES: Record<ExportFormat, string> = { csv: 'text/csv; charset=utf-8', ndjson: 'application/x-ndjson', avro: 'application/avro' };
