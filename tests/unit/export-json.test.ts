/** The JSON of `replay export --format ndjson`: writer-schema shape, 64-bit longs as strings, bytes as base64, ISO timestamps. */
import { describe, expect, it } from 'vitest';
import type { Schema } from 'avsc';
import { avroType } from '../../contracts/avro-types.js';
import type { ExportEvent } from '../../replay/export/events.js';
import { isoString, jsonTranscoder } from '../../replay/export/json.js';
import { ndjsonLine } from '../../replay/export/ndjson.js';
import type { WriterSchema } from '../../replay/export/writer-schemas.js';

const SYNTHETIC = {
  type: 'record',
  name: 'Counters',
  namespace: 'relaygrid.test',
  fields: [
    { name: 'max', type: 'long' },
    { name: 'min', type: { type: 'long' } },
    { name: 'maybe', type: ['null', 'long'], default: null },
    { name: 'small', type: 'int' },
    { name: 'ok', type: 'boolean' },
    { name: 'ratio', type: 'double' },
    { name: 'odd', type: 'float' },
    { name: 'blob', type: 'bytes' },
    { name: 'hash', type: { type: 'fixed', name: 'Hash4', size: 4 } },
    { name: 'level', type: { type: 'enum', name: 'Level', symbols: ['LOW', 'HIGH'] } },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
    { name: 'perNode', type: { type: 'map', values: 'long' } },
    { name: 'tags', type: { type: 'array', items: 'string' } },
    { name: 'either', type: ['null', 'string', 'long'] },
    { name: 'shape', type: ['null', { type: 'record', name: 'A', fields: [{ name: 'a', type: 'int' }] }, { type: 'record', name: 'B', fields: [{ name: 'b', type: 'bytes' }] }] },
    { name: 'next', type: ['null', 'Counters'], default: null },
  ],
} as unknown as Schema;

const type = avroType(SYNTHETIC);

/** The Avro bytes of a Counters record (the defaults below, overridden by `over`). */
function bytes(over: Record<string, unknown> = {}): Buffer {
  return type.toBuffer({
      max: 9_223_372_036_854_775_807n,
      min: -9_223_372_036_854_775_808n,
      maybe: 9_007_199_254_740_993n,
      small: -7,
      ok: true,
      ratio: 0.1,
      odd: Number.NaN,
      blob: Buffer.from([0, 1, 2, 250, 251, 255]),
      hash: Buffer.from('abcd'),
      level: 'HIGH',
      at: new Date('2026-11-24T10:00:00.123Z'),
      perNode: { 'n-1': 4_294_967_296n, 'n-2': 0n },
      tags: ['a', 'ü "quoted"'],
      either: 3n,
      shape: { 'relaygrid.test.B': { b: Buffer.from('hi') } },
      next: null,
      ...over,
  });
}

const values = (over: Record<string, unknown> = {}): unknown => type.fromBuffer(bytes(over));

describe('JSON of writer-schema values', () => {
  it('writes 64-bit longs as exact decimal strings, bytes as base64, timestamps as ISO UTC with milliseconds', () => {
    const text = jsonTranscoder(type)(bytes());
    expect(text).toContain('"max":"9223372036854775807"');
    expect(JSON.parse(text)).toEqual({
      max: '9223372036854775807',
      min: '-9223372036854775808',
      maybe: '9007199254740993',
      small: -7,
      ok: true,
      ratio: 0.1,
      odd: 'NaN',
      blob: 'AAEC+vv/',
      hash: 'YWJjZA==',
      level: 'HIGH',
      at: '2026-11-24T10:00:00.123Z',
      perNode: { 'n-1': '4294967296', 'n-2': '0' },
      tags: ['a', 'ü "quoted"'],
      either: { long: '3' },
      shape: { 'relaygrid.test.B': { b: 'aGk=' } },
      next: null,
    });
  });

  it('nullable fields are null or the plain value; other unions name their branch; recursion works', () => {
    const inner = values({ maybe: null, either: 'x', shape: { 'relaygrid.test.A': { a: 1 } } });
    const parsed = JSON.parse(jsonTranscoder(type)(bytes({ either: null, shape: null, ratio: Number.POSITIVE_INFINITY, next: inner }))) as Record<string, unknown>;
    expect(parsed).toMatchObject({ either: null, shape: null, ratio: 'Infinity' });
    expect(parsed['next']).toMatchObject({ maybe: null, either: { string: 'x' }, shape: { 'relaygrid.test.A': { a: 1 } } });
  });

  it('an NDJSON line: CloudEvents attributes, optional extensions only when present, sequence, natsSubject, data', () => {
    const writer = { ceType: 'relaygrid.test.Counters.v1', fingerprint: 'sha256:00', type } as WriterSchema;
    const ev: ExportEvent = {
      sequence: 42,
      natsSubject: 'rg.evt.usage.node.n-1',
      writer,
      bytes: bytes(),
      attributes: {
        specversion: '1.0',
        id: 'e-1',
        type: 'relaygrid.test.Counters.v1',
        source: 'relaygrid/test',
        time: '2026-11-24T10:00:00.000Z',
        subject: 'n-1',
        dataschema: 'sha256:00',
        actor: undefined,
        correlationid: 'c-1',
        causationid: undefined,
        traceparent: undefined,
      },
    };
    const line = JSON.parse(ndjsonLine(ev)) as Record<string, unknown>;
    expect(Object.keys(line)).toEqual(['specversion', 'id', 'type', 'source', 'time', 'subject', 'dataschema', 'correlationid', 'sequence', 'natsSubject', 'data']);
    expect(line).toMatchObject({ sequence: 42, natsSubject: 'rg.evt.usage.node.n-1', correlationid: 'c-1', data: { max: '9223372036854775807' } });
    expect(ndjsonLine(ev)).not.toContain('\n');
  });

  it('strings that need escaping are escaped; truncated data and trailing bytes are errors', () => {
    const t = avroType({ type: 'record', name: 'S', fields: [{ name: 's', type: 'string' }, { name: 'n', type: 'long' }] } as unknown as Schema);
    for (const s of ['plain-ascii_123', 'say "hi"', 'back\\slash', 'tab\tand\nnewline\u0001', 'héllo ✓ 🎉', '\u2028']) {
      expect(JSON.parse(jsonTranscoder(t)(t.toBuffer({ s, n: 1n }))), s).toEqual({ s, n: '1' });
    }
    const good = t.toBuffer({ s: 'abc', n: 300n });
    expect(() => jsonTranscoder(t)(good.subarray(0, good.length - 1))).toThrow(/truncated/);
    expect(() => jsonTranscoder(t)(Buffer.concat([good, Buffer.from([0])]))).toThrow(/trailing/);
  });

  it('writes timestamps exactly as Date.toISOString, and the milliseconds past what a Date holds', () => {
    const samples = [0, -1, 1, 951_782_400_000, 1_700_000_000_123, -62_167_219_200_000, 253_402_300_799_999, -62_167_219_200_001, 253_402_300_800_000, 8.64e15];
    for (let i = 0; i < 2000; i++) samples.push(Math.round((Math.random() - 0.5) * 2 * 253_402_300_799_999));
    for (const ms of samples) expect(isoString(ms), String(ms)).toBe(new Date(ms).toISOString());
    expect(isoString(8.64e15 + 1)).toBe('8640000000000001');
    expect(isoString(9_223_372_036_854_775_807n)).toBe('9223372036854775807');
  });

  it('escapes attributes that need it', () => {
    const writer = { ceType: 'relaygrid.test.Counters.v1', fingerprint: 'sha256:00', type } as WriterSchema;
    const attributes = { specversion: '1.0', id: 'e-1', type: 'relaygrid.test.Counters.v1', source: 'relaygrid/test', time: '2026-11-24T10:00:00.000Z', subject: undefined, dataschema: 'sha256:00', actor: 'user:"quoted"\\', correlationid: 'ü', causationid: undefined, traceparent: undefined };
    const line = JSON.parse(ndjsonLine({ sequence: 1, natsSubject: 'a.b', writer, bytes: bytes(), attributes })) as Record<string, unknown>;
    expect(line).toMatchObject({ actor: 'user:"quoted"\\', correlationid: 'ü' });
    expect(line).not.toHaveProperty('subject');
  });
});
