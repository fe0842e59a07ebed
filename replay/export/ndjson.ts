/**
 * NDJSON export: one line per event, CloudEvents' JSON format in shape: the
 * attributes (`specversion`, `id`, `type`, `source`, `time`, `subject`,
 * `dataschema`, and `actor`, `correlationid`, `causationid`, `traceparent`
 * when the event has them), then `sequence` (the stream sequence, a number)
 * and `natsSubject`, then `data`: the event in its writer schema's shape,
 * read from its Avro bytes as json.ts describes (longs as strings, bytes as base64, timestamps
 * as ISO strings).
 */
import { withData, type EventAttributes, type ExportEvent } from './events.js';
import { jsonTranscoder } from './json.js';
import { FileWriter, pendingFile, type PendingOutput } from './output.js';
import type { ExportSink, WrittenFile } from './sink.js';

/** Lines are encoded into chunks of this size, written as one: a write per line was a third of the export's time. */
const CHUNK_BYTES = 1 << 20;

/** Printable ASCII other than `"` and `\`: JSON.stringify would only add the quotes, and this scan costs half as much. */
function plainAscii(value: string | undefined): boolean {
  if (value === undefined) return true;
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 32 || code > 126 || code === 34 || code === 92) return false;
  }
  return true;
}

const quote = (v: string): string => `"${v}"`;

/** Quotes for the attributes: plain when none of them needs escaping (the usual case), JSON.stringify otherwise. */
function quoting(a: EventAttributes): (v: string) => string {
  const plain =
    plainAscii(a.specversion) && plainAscii(a.id) && plainAscii(a.type) && plainAscii(a.source) && plainAscii(a.time) && plainAscii(a.subject) &&
    plainAscii(a.dataschema) && plainAscii(a.actor) && plainAscii(a.correlationid) && plainAscii(a.causationid) && plainAscii(a.traceparent);
  return plain ? quote : JSON.stringify;
}

/** The NDJSON line of one event, without the newline. */
export function ndjsonLine(ev: ExportEvent): string {
  const a = ev.attributes;
  const q = quoting(a);
  let line = `{"specversion":${q(a.specversion)},"id":${q(a.id)},"type":${q(a.type)},"source":${q(a.source)},"time":${q(a.time)}`;
  if (a.subject !== undefined) line += `,"subject":${q(a.subject)}`;
  line += `,"dataschema":${q(a.dataschema)}`;
  if (a.actor !== undefined) line += `,"actor":${q(a.actor)}`;
  if (a.correlationid !== undefined) line += `,"correlationid":${q(a.correlationid)}`;
  if (a.causationid !== undefined) line += `,"causationid":${q(a.causationid)}`;
  if (a.traceparent !== undefined) line += `,"traceparent":${q(a.traceparent)}`;
  const data = withData(ev, jsonTranscoder(ev.writer.type));
  return `${line},"sequence":${ev.sequence},"natsSubject":${JSON.stringify(ev.natsSubject)},"data":${data}}`;
}

export class NdjsonSink implements ExportSink {
  private chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  private used = 0;
  private count = 0;

  private constructor(
    private readonly out: string,
    private readonly pending: PendingOutput,
    private readonly file: FileWriter,
  ) {}

  static async open(out: string): Promise<NdjsonSink> {
    const pending = await pendingFile(out);
    return new NdjsonSink(out, pending, new FileWriter(pending.partial, out));
  }

  write(ev: ExportEvent): void | Promise<void> {
    const line = ndjsonLine(ev);
    this.count++;
    // A UTF-16 unit takes at most 3 bytes in UTF-8; a line longer than a chunk goes alone.
    if (this.used + line.length * 3 + 1 <= this.chunk.length) {
      this.used += this.chunk.write(line, this.used);
      this.chunk[this.used++] = 0x0a;
      return;
    }
    const flushed = this.flush();
    const whole = `${line}\n`;
    if (whole.length * 3 > this.chunk.length) return flushed ? flushed.then(() => this.file.write(whole)) : this.file.write(whole);
    this.used = this.chunk.write(whole, 0);
    return flushed;
  }

  /** Hands the chunk to the file (which keeps it until written) and starts a new one. */
  private flush(): void | Promise<void> {
    if (this.used === 0) return;
    const full = this.chunk.subarray(0, this.used);
    this.chunk = Buffer.allocUnsafe(CHUNK_BYTES);
    this.used = 0;
    return this.file.write(full);
  }

  async finish(): Promise<WrittenFile[]> {
    await this.flush();
    await this.file.close();
    await this.pending.commit();
    return [{ path: this.out, events: this.count }];
  }

  async abort(): Promise<void> {
    this.file.destroy();
    await this.pending.discard();
  }
}
