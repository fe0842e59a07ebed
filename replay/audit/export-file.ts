/**
 * The audit export file (docs/auditors.md, "The export file"): NDJSON, one
 * JSON object per line, binary fields in standard base64.
 *
 *   line 1      header   {"format":"relaygrid-audit-export","version":1,"stream":…,"leaves":N,"recorded":R,"exportedAt":…}
 *   then        record   {"leaf":i,"seq":s,"subject":…,"headers":b64,"body":b64[,"recorded":b64]}   leaf 0, 1, … in order
 *   then        missing  {"leaf":i,"recorded":b64}   a leaf the worker recorded that the stream has no message for
 *   last line   trailer  {"end":true,"records":M,"missing":K}
 *
 * Why NDJSON and not a length-prefixed binary layout: an auditor's verifier
 * needs only a JSON parser, base64 and SHA-256, which every language has; the
 * file streams line by line; `head -1` shows what it is; and base64 carries
 * the stored bytes exactly. The cost (a third more bytes) goes away with gzip.
 *
 * Parsing is strict: an unknown format or version, a missing or mistyped
 * field, a line of another kind where this one belongs, all fail with the
 * line number (ExportFormatError, exit 4) before anything is concluded.
 */
import { ExportFormatError } from './errors.js';

export const EXPORT_FORMAT = 'relaygrid-audit-export';
export const EXPORT_VERSION = 1;

export interface ExportHeader {
  format: typeof EXPORT_FORMAT;
  version: typeof EXPORT_VERSION;
  /** The audit stream exported. */
  stream: string;
  /** Leaves the export covers: 0 … leaves−1, stream sequences 1 … leaves. */
  leaves: number;
  /** How many of them, from leaf 0, carry the audit worker's recorded leaf hash. */
  recorded: number;
  exportedAt: string;
}

export interface ExportRecord {
  leaf: number;
  seq: number;
  subject: string;
  /** The stored header block, byte for byte (`NATS/1.0\r\n…`); empty when the message has none. */
  headers: Uint8Array;
  body: Uint8Array;
  /** The leaf hash the audit worker recorded for this leaf, when it has one. */
  recorded?: Buffer;
}

export interface ExportMissing {
  leaf: number;
  recorded: Buffer;
}

export interface ExportTrailer {
  records: number;
  missing: number;
}

export type ExportLine = { kind: 'record'; record: ExportRecord } | { kind: 'missing'; missing: ExportMissing } | { kind: 'trailer'; trailer: ExportTrailer };

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');

export function headerLine(h: Omit<ExportHeader, 'format' | 'version'>): string {
  const header: ExportHeader = { format: EXPORT_FORMAT, version: EXPORT_VERSION, ...h };
  return `${JSON.stringify(header)}\n`;
}

export function recordLine(r: ExportRecord): string {
  const base = `{"leaf":${r.leaf},"seq":${r.seq},"subject":${JSON.stringify(r.subject)},"headers":"${b64(r.headers)}","body":"${b64(r.body)}"`;
  return r.recorded ? `${base},"recorded":"${b64(r.recorded)}"}\n` : `${base}}\n`;
}

export function missingLine(m: ExportMissing): string {
  return `{"leaf":${m.leaf},"recorded":"${b64(m.recorded)}"}\n`;
}

export function trailerLine(t: ExportTrailer): string {
  return `{"end":true,"records":${t.records},"missing":${t.missing}}\n`;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

class Fields {
  constructor(
    private readonly o: Record<string, unknown>,
    private readonly where: string,
  ) {}

  private bad(name: string, what: string): never {
    throw new ExportFormatError(`${this.where}: "${name}" must be ${what}`);
  }

  count(name: string): number {
    const v = this.o[name];
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : this.bad(name, 'a non-negative integer');
  }

  text(name: string): string {
    const v = this.o[name];
    return typeof v === 'string' ? v : this.bad(name, 'a string');
  }

  bytes(name: string): Buffer {
    const v = this.o[name];
    // Strict base64: Buffer.from would skip what is not base64, and the hash would silently cover other bytes.
    return typeof v === 'string' && BASE64.test(v) ? Buffer.from(v, 'base64') : this.bad(name, 'standard base64');
  }

  hash(name: string): Buffer {
    const v = this.bytes(name);
    return v.length === 32 ? v : this.bad(name, 'a base64 SHA-256 hash (32 bytes)');
  }

  has(name: string): boolean {
    return this.o[name] !== undefined;
  }
}

function objectOf(line: string, where: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw new ExportFormatError(`${where}: not JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ExportFormatError(`${where}: not a JSON object`);
  return value as Record<string, unknown>;
}

export function parseHeader(line: string | undefined, file: string): ExportHeader {
  const where = `${file} line 1`;
  if (line === undefined) throw new ExportFormatError(`${file} is empty: not an audit export`);
  const o = objectOf(line, where);
  if (o['format'] !== EXPORT_FORMAT) throw new ExportFormatError(`${where}: not an audit export (its "format" is not "${EXPORT_FORMAT}")`);
  if (o['version'] !== EXPORT_VERSION) throw new ExportFormatError(`${where}: export version ${JSON.stringify(o['version'])}; this verifier reads version ${EXPORT_VERSION}`);
  const f = new Fields(o, where);
  const header: ExportHeader = { format: EXPORT_FORMAT, version: EXPORT_VERSION, stream: f.text('stream'), leaves: f.count('leaves'), recorded: f.count('recorded'), exportedAt: f.text('exportedAt') };
  if (header.recorded > header.leaves) throw new ExportFormatError(`${where}: "recorded" (${header.recorded}) exceeds "leaves" (${header.leaves})`);
  return header;
}

/** A line after the header, by its fields: `end` a trailer, `subject` a record, else a missing leaf. */
export function parseLine(line: string, where: string): ExportLine {
  const o = objectOf(line, where);
  const f = new Fields(o, where);
  if (o['end'] === true) return { kind: 'trailer', trailer: { records: f.count('records'), missing: f.count('missing') } };
  if (f.has('subject')) {
    const record: ExportRecord = { leaf: f.count('leaf'), seq: f.count('seq'), subject: f.text('subject'), headers: f.bytes('headers'), body: f.bytes('body') };
    if (f.has('recorded')) record.recorded = f.hash('recorded');
    return { kind: 'record', record };
  }
  return { kind: 'missing', missing: { leaf: f.count('leaf'), recorded: f.hash('recorded') } };
}
