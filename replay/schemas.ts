/**
 * `relaygrid replay schemas [--json]`: every event type and version any client
 * can decode, read from the schema bucket, with its fingerprint and CloudEvents
 * type, and whether this build knows it. A catalogue schema missing from the
 * bucket is listed too, flagged, because a message written with it could not
 * be decoded by anyone else until `migrate` publishes it.
 */
import { parseArgs } from 'node:util';
import type { Runtime } from '../infra/runtime.js';
import { ReplayArgumentError } from './range.js';
import { WriterSchemas, type WriterSchema } from './export/writer-schemas.js';

export interface SchemaListing {
  /** `<context>.<Event>` */
  type: string | null;
  version: number;
  ceType: string;
  fingerprint: string;
  /** In the schema bucket, so any client can decode it. */
  published: boolean;
  /** In this build's catalogue. */
  inCatalogue: boolean;
  /** The version this build writes. */
  current: boolean;
  schema: unknown;
}

function listing(s: WriterSchema): SchemaListing {
  return { type: s.key ?? null, version: s.version, ceType: s.ceType, fingerprint: s.fingerprint, published: s.published, inCatalogue: s.inCatalogue, current: s.current, schema: s.schema };
}

function table(rows: SchemaListing[]): string {
  const header = ['TYPE', 'VERSION', 'CLOUDEVENTS TYPE', 'FINGERPRINT', 'THIS BUILD'];
  const cells = rows.map((r) => [
    r.type ?? '?',
    `v${r.version}`,
    r.ceType,
    r.fingerprint,
    [r.inCatalogue ? (r.current ? 'current' : 'yes') : 'no', r.published ? '' : 'NOT PUBLISHED: run relaygrid migrate'].filter(Boolean).join(', '),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...cells.map(line)].join('\n');
}

export async function runSchemas(rt: Runtime, args: string[]): Promise<void> {
  let json: boolean | undefined;
  try {
    ({ values: { json } } = parseArgs({ args, options: { json: { type: 'boolean' } } }));
  } catch (err) {
    throw new ReplayArgumentError(`${(err as Error).message} (usage: relaygrid replay schemas [--json])`);
  }
  const schemas = await WriterSchemas.load(rt);
  if (!schemas.bucketFound) {
    throw new ReplayArgumentError(`no schema bucket ${schemas.bucket} in namespace "${rt.names.namespace}": check RG_NAMESPACE, or run relaygrid migrate`);
  }
  const rows = schemas.list().map(listing);
  if (json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    return;
  }
  const published = rows.filter((r) => r.published).length;
  process.stdout.write(`${table(rows)}\n\n${published} schemas in ${schemas.bucket} (key: the fingerprint's hex)${published < rows.length ? `, ${rows.length - published} of this build not published` : ''}\n`);
}
