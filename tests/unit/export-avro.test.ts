/**
 * Avro container files of `replay export`: 64-bit longs (bigint) and Date
 * timestamps encode through avsc's BlockEncoder, Apache Avro's Python reader
 * opens the files unaided and reads the exact values, versions of one event go
 * to separate files, and the output appears only when complete.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Schema } from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { avroType } from '../../contracts/avro-types.js';
import { fingerprintOf } from '../../contracts/codec.js';
import { AvroSink } from '../../replay/export/avro.js';
import { envelopeWriter } from '../../replay/export/envelope-type.js';
import type { ExportEvent } from '../../replay/export/events.js';
import { ReplayArgumentError } from '../../replay/range.js';
import type { WriterSchema } from '../../replay/export/writer-schemas.js';

const run = promisify(execFile);

const READ = String.raw`
import json, os, sys
from avro.datafile import DataFileReader
from avro.io import DatumReader
out = {}
for name in sorted(os.listdir(sys.argv[1])):
    with DataFileReader(open(os.path.join(sys.argv[1], name), "rb"), DatumReader()) as r:
        meta = {k: v.decode() for k, v in r.meta.items() if k.startswith("relaygrid.")}
        rows = [dict(e, data={k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in e["data"].items()}) for e in r]
        out[name] = {"meta": meta, "schema": json.loads(r.get_meta("avro.schema")), "rows": rows}
# Python ints are exact: print 64-bit values as strings so JavaScript's JSON.parse cannot round them.
print(json.dumps(out, default=str).replace(": 9223372036854775807", ": \"9223372036854775807\"").replace(": -9223372036854775808", ": \"-9223372036854775808\""))
`;

function writer(name: string, version: number, fields: unknown[]): WriterSchema {
  const schema = { type: 'record', name, namespace: 'relaygrid.usage', fields } as unknown as Schema;
  const type = avroType(schema);
  return { fingerprint: fingerprintOf(type), ceType: `relaygrid.usage.${name}.v${version}`, key: `usage.${name}`, version, schema, published: true, inCatalogue: false, current: false, type };
}

const COUNTED_V1 = writer('BytesCounted', 1, [
  { name: 'nodeId', type: 'string' },
  { name: 'bytes', type: 'long' },
  { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
]);
const COUNTED_V2 = writer('BytesCounted', 2, [
  { name: 'nodeId', type: 'string' },
  { name: 'bytes', type: 'long' },
  { name: 'delta', type: ['null', 'long'], default: null },
  { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
]);

function event(w: WriterSchema, seq: number, data: Record<string, unknown>): ExportEvent {
  return {
    sequence: seq,
    natsSubject: `rg.evt.usage.node.n-${seq}`,
    writer: w,
    bytes: w.type.toBuffer(data),
    attributes: { specversion: '1.0', id: `e-${seq}`, type: w.ceType, source: 'relaygrid/test', time: '2026-11-24T10:00:00.000Z', subject: `n-${seq}`, dataschema: w.fingerprint, actor: undefined, correlationid: 'c', causationid: undefined, traceparent: undefined },
  };
}

describe('the Avro envelope', () => {
  it('writes the stored event bytes exactly as avsc encodes the decoded event (the fallback path)', () => {
    const at = new Date('2026-11-24T10:00:00.123Z');
    const ev = event(COUNTED_V2, 2 ** 40 + 7, { nodeId: 'n-1', bytes: 9_223_372_036_854_775_807n, delta: null, at });
    const stored = envelopeWriter(COUNTED_V2.schema, true);
    const decoded = envelopeWriter(COUNTED_V2.schema, false);
    expect(stored.type.toBuffer(stored.record(ev)).equals(decoded.type.toBuffer(decoded.record(ev)))).toBe(true);
  });
});

describe('Avro container export', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rg-avro-unit-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes bigint longs and Date timestamps that python3-avro reads exactly, one file per writer schema, with the range in the metadata', async () => {
    const out = join(dir, 'export');
    const sink = await AvroSink.open(out, { stream: 'RG_USAGE', from: 10, to: 20, subjectFilter: 'rg.evt.usage.>' });
    const at = new Date('2026-11-24T10:00:00.123Z');
    await sink.write(event(COUNTED_V1, 10, { nodeId: 'n-1', bytes: 9_223_372_036_854_775_807n, at }));
    await sink.write(event(COUNTED_V2, 11, { nodeId: 'n-2', bytes: -9_223_372_036_854_775_808n, delta: 9_007_199_254_740_993n, at }));
    await sink.write(event(COUNTED_V1, 12, { nodeId: 'n-3', bytes: 0n, at }));
    const files = await sink.finish();
    expect(files).toEqual([
      { path: join(out, 'usage.BytesCounted.v1.avro'), events: 2 },
      { path: join(out, 'usage.BytesCounted.v2.avro'), events: 1 },
    ]);

    const { stdout } = await run('/usr/bin/python3', ['-c', READ, out]);
    const read = JSON.parse(stdout) as Record<string, { meta: Record<string, string>; schema: { name: string; fields: { name: string; type: unknown }[] }; rows: Record<string, unknown>[] }>;
    const v1 = read['usage.BytesCounted.v1.avro']!;
    expect(v1.meta).toEqual({
      'relaygrid.stream': 'RG_USAGE',
      'relaygrid.from': '10',
      'relaygrid.to': '20',
      'relaygrid.fingerprints': JSON.stringify([COUNTED_V1.fingerprint]),
      'relaygrid.type': 'relaygrid.usage.BytesCounted.v1',
      'relaygrid.filter.subject': 'rg.evt.usage.>',
    });
    expect(v1.rows.map((r) => [r['sequence'], r['id'], r['data']])).toEqual([
      [10, 'e-10', { nodeId: 'n-1', bytes: '9223372036854775807', at: '2026-11-24T10:00:00.123000+00:00' }],
      [12, 'e-12', { nodeId: 'n-3', bytes: 0, at: '2026-11-24T10:00:00.123000+00:00' }],
    ]);
    expect(v1.rows[0]).toMatchObject({ actor: null, correlationid: 'c', subject: 'n-10', natsSubject: 'rg.evt.usage.node.n-10' });
    // The header's data schema is the writer schema: same canonical form, same fingerprint.
    const data = v1.schema.fields.find((f) => f.name === 'data')!.type as Schema;
    expect(fingerprintOf(avroType(data))).toBe(COUNTED_V1.fingerprint);
    expect(read['usage.BytesCounted.v2.avro']!.rows[0]!['data']).toEqual({ nodeId: 'n-2', bytes: '-9223372036854775808', delta: 9_007_199_254_740_993, at: '2026-11-24T10:00:00.123000+00:00' });
  });

  it('keeps two schemas under one CloudEvents type apart', async () => {
    const other = { ...writer('BytesCounted', 1, [{ name: 'nodeId', type: 'string' }]) };
    const out = join(dir, 'clash');
    const sink = await AvroSink.open(out, { stream: 'S', from: 1, to: 2 });
    await sink.write(event(COUNTED_V1, 1, { nodeId: 'a', bytes: 1n, at: new Date(0) }));
    await sink.write(event(other, 2, { nodeId: 'b' }));
    const files = await sink.finish();
    expect(files.map((f) => f.path.slice(out.length + 1)).sort()).toEqual([`usage.BytesCounted.v1.${other.fingerprint.slice(7, 19)}.avro`, 'usage.BytesCounted.v1.avro']);
  });

  it('shows nothing at --out until finished, and leaves nothing after an abort', async () => {
    const out = join(dir, 'pending');
    const sink = await AvroSink.open(out, { stream: 'S', from: 1, to: 1 });
    await sink.write(event(COUNTED_V1, 1, { nodeId: 'a', bytes: 1n, at: new Date(0) }));
    expect(await readdir(dir)).not.toContain('pending');
    await sink.abort();
    expect((await readdir(dir)).filter((f) => f.startsWith('pending'))).toEqual([]);
  });

  it('refuses an --out that is a file, a non-empty directory, or under a file', async () => {
    await writeFile(join(dir, 'file'), '');
    await mkdir(join(dir, 'full'));
    await writeFile(join(dir, 'full', 'x'), '');
    const meta = { stream: 'S', from: 1, to: 1 };
    await expect(AvroSink.open(join(dir, 'file'), meta)).rejects.toThrow(/is a file/);
    await expect(AvroSink.open(join(dir, 'full'), meta)).rejects.toThrow(/is not empty/);
    await expect(AvroSink.open(join(dir, 'file', 'sub'), meta)).rejects.toThrow(ReplayArgumentError);
    // An existing empty directory is fine.
    await mkdir(join(dir, 'empty'));
    const sink = await AvroSink.open(join(dir, 'empty'), meta);
    await sink.write(event(COUNTED_V1, 1, { nodeId: 'a', bytes: 1n, at: new Date(0) }));
    await sink.finish();
    expect(await readdir(join(dir, 'empty'))).toEqual(['usage.BytesCounted.v1.avro']);
  });
});
