/**
 * The flags of `relaygrid replay export`, checked before anything is read:
 * every mistake ends as one ReplayArgumentError naming the flag.
 */
import { parseArgs } from 'node:util';
import { parseBound, ReplayArgumentError, type Bound } from '../range.js';

export const EXPORT_FORMATS = ['avro', 'ndjson'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const EXPORT_USAGE =
  'usage: relaygrid replay export --stream S [--from seq|time] [--to seq|time] [--type T…] [--subject F] --format avro|ndjson --out PATH';

export interface ExportOptions {
  stream: string;
  from?: Bound;
  to?: Bound;
  /** `--type` values as given: `<context>.<Event>` or a full CloudEvents type. */
  types: string[];
  /** `--subject`: a NATS subject filter within the stream. */
  subject?: string;
  format: ExportFormat;
  /** A directory for avro, a file for ndjson. */
  out: string;
}

export function parseExportArgs(args: string[]): ExportOptions {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        stream: { type: 'string' },
        from: { type: 'string' },
        to: { type: 'string' },
        type: { type: 'string', multiple: true },
        subject: { type: 'string' },
        format: { type: 'string' },
        out: { type: 'string' },
      },
    }));
  } catch (err) {
    throw new ReplayArgumentError(`${(err as Error).message} (${EXPORT_USAGE})`);
  }
  if (!values.stream) throw new ReplayArgumentError(`--stream: name the stream to export, e.g. --stream RG_IDENTITY (${EXPORT_USAGE})`);
  if (!values.format) throw new ReplayArgumentError('--format: avro or ndjson');
  const format = values.format;
  if (!isFormat(format)) throw new ReplayArgumentError(`--format: "${format}" is not one of ${EXPORT_FORMATS.join(', ')}`);
  if (!values.out) throw new ReplayArgumentError(`--out: where to write: ${format === 'avro' ? 'a directory (one .avro file per event type and version)' : 'a file'}`);
  if (values.subject !== undefined && !validFilter(values.subject)) {
    throw new ReplayArgumentError(`--subject: "${values.subject}" is not a NATS subject filter (tokens separated by ".", "*" for one token, ">" for the rest)`);
  }
  const types = values.type ?? [];
  const empty = types.find((t) => t.trim() === '');
  if (empty !== undefined) throw new ReplayArgumentError('--type: an event type, e.g. identity.UserRegistered or relaygrid.identity.UserRegistered.v3');
  const from = parseBound('--from', values.from);
  const to = parseBound('--to', values.to);
  return { stream: values.stream, from, to, types, subject: values.subject, format, out: values.out };
}

function isFormat(value: string): value is ExportFormat {
  return (EXPORT_FORMATS as readonly string[]).includes(value);
}

function validFilter(filter: string): boolean {
  const tokens = filter.split('.');
  return tokens.every((t, i) => t !== '' && !/\s/.test(t) && (t === '>' ? i === tokens.length - 1 : !t.includes('>') && (t === '*' || !t.includes('*'))));
}
