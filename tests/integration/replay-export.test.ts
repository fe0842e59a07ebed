/**
 * `relaygrid replay export` and `replay schemas` against a real stream: the
 * NDJSON export holds exactly the events of the range with their writer-schema
 * data; Debian's python3-avro (Apache Avro's own reader) opens the Avro export
 * unaided and finds the same events and values; the Python example of
 * docs/analysts.md decodes the stream without Relaygrid's code; the CLI ends
 * bad arguments with one line and exit code 2.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Kvm } from '@nats-io/kv';
import { headers as natsHeaders } from '@nats-io/transport-node';
import type { Schema } from 'avsc';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { avroType } from '../../contracts/avro-types.js';
import { fingerprintHex, fingerprintOf } from '../../contracts/codec.js';
import type { DomainEvent, EventMeta } from '../../contracts/envelope.js';
import { uuidv7 } from '../../contracts/ids.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { exportRange } from '../../replay/export/export.js';
import type { ExportOptions } from '../../replay/export/args.js';
import { runCli } from '../support/cli.js';
import { isolated, type Isolated } from '../support/isolated.js';
import { testUsers, type TestUsers } from '../support/users.js';

const DOCS = fileURLToPath(new URL('../../docs/analysts.md', import.meta.url));
const PYTHON = '/usr/bin/python3';
const run = promisify(execFile);

/** Reads every .avro file of a directory with python3-avro and prints them as JSON, values normalised as the NDJSON export writes them. */
const READ_AVRO = String.raw`
import base64, datetime, json, os, sys
import avro.schema
from avro.datafile import DataFileReader
from avro.io import DatumReader

def plain(schema, value):
    t = schema.type
    if t == "union":
        if value is None:
            return None
        branches = [s for s in schema.schemas if s.type != "null"]
        assert len(branches) == 1, "only nullable unions here"
        return plain(branches[0], value)
    if schema.get_prop("logicalType") == "timestamp-millis":
        return value.astimezone(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if t == "long":
        return str(value)
    if t in ("bytes", "fixed"):
        return base64.b64encode(value).decode()
    if t in ("record", "error"):
        return {f.name: plain(f.type, value[f.name]) for f in schema.fields}
    if t == "array":
        return [plain(schema.items, v) for v in value]
    if t == "map":
        return {k: plain(schema.values, v) for k, v in value.items()}
    return value

files = []
for name in sorted(os.listdir(sys.argv[1])):
    with DataFileReader(open(os.path.join(sys.argv[1], name), "rb"), DatumReader()) as reader:
        schema = avro.schema.parse(reader.get_meta("avro.schema").decode())
        meta = {k: v.decode() for k, v in reader.meta.items() if k.startswith("relaygrid.")}
        files.append({"file": name, "meta": meta, "codec": reader.get_meta("avro.codec").decode(), "records": [plain(schema, r) for r in reader]})
print(json.dumps(files))
`;

/** A schema only the bucket knows (no build has it), with 64-bit longs: exported from the bucket's copy. */
const LOYALTY_SCHEMA = {
  type: 'record',
  name: 'LoyaltyAwarded',
  namespace: 'relaygrid.identity',
  fields: [
    { name: 'userId', type: 'string' },
    { name: 'points', type: 'long' },
    { name: 'balance', type: ['null', 'long'], default: null },
    { name: 'awardedAt', type: { type: 'long', logicalType: 'timestamp-millis' } },
  ],
} as const;
const LOYALTY_TYPE = 'relaygrid.identity.LoyaltyAwarded.v1';

interface Expected {
  seq: number;
  id: string;
  type: string;
  natsSubject: string;
  data: unknown;
}

type Line = Record<string, unknown> & { sequence: number; id: string; type: string; data: unknown };

/** Values as the NDJSON export writes them: bytes base64, Date ISO, bigint decimal. */
function plain(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return value.toString('base64');
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(plain);
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]));
  return value;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('relaygrid replay export', () => {
  let env: Isolated;
  let store: EventStore;
  let users: TestUsers;
  let stream: string;
  let dir: string;
  const expected: Expected[] = [];
  /** Sequence of each message appended, in order. */
  const seqs: number[] = [];
  const meta: EventMeta = { source: 'relaygrid/test', actor: 'system:test', correlationId: 'corr-1', traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' };

  async function append(subject: string, events: DomainEvent[], expectedSeq: number, extra: Partial<EventMeta> = {}): Promise<number> {
    const { seq, ids } = await store.append(subject, events, { expectedSeq, meta: { ...meta, ...extra } });
    const registered = (type: string) => env.rt.registry.currentOf(type).ceType;
    events.forEach((e, i) => expected.push({ seq, id: ids[i]!, type: registered(e.type), natsSubject: subject, data: plain(e.data) }));
    seqs.push(seq);
    await sleep(3); // distinct stored milliseconds, for the time-bound test
    return seq;
  }

  /** A message written the way an older build (or another producer) wrote it: any schema, by hand. */
  async function publishRaw(subject: string, ceType: string, schema: Schema, data: unknown): Promise<number> {
    const type = avroType(schema);
    const fingerprint = fingerprintOf(type);
    const id = uuidv7();
    const h = natsHeaders();
    for (const [k, v] of Object.entries({ 'ce-specversion': '1.0', 'ce-id': id, 'ce-type': ceType, 'ce-source': 'relaygrid/legacy', 'ce-time': new Date().toISOString(), 'ce-subject': subject.split('.').pop()!, 'ce-dataschema': fingerprint, 'content-type': 'avro/binary' })) {
      h.append(k, v);
    }
    const ack = await env.rt.nats.js.publish(subject, type.toBuffer(data), { headers: h, msgID: id });
    expected.push({ seq: ack.seq, id, type: ceType, natsSubject: subject, data: plain(data) });
    seqs.push(ack.seq);
    await sleep(3);
    return ack.seq;
  }

  beforeAll(async () => {
    env = await isolated();
    store = new EventStore(env.rt.nats, env.rt.names, env.rt.registry);
    users = testUsers(env.rt);
    stream = env.rt.names.stream('identity');
    dir = await mkdtemp(join(tmpdir(), 'rg-export-'));
    const userSubject = (id: string) => env.rt.names.aggregate('identity', 'user', id);
    const at = new Date('2026-11-24T10:00:00.123Z');

    // A schema published to the bucket by some other build: this one has never heard of it.
    const kv = await new Kvm(env.rt.nats.js).open(env.rt.names.schemaBucket);
    const loyaltyPrint = fingerprintOf(avroType(LOYALTY_SCHEMA as unknown as Schema));
    await kv.create(fingerprintHex(loyaltyPrint), JSON.stringify({ type: LOYALTY_TYPE, version: 1, schema: LOYALTY_SCHEMA }));

    const u1 = uuidv7();
    const u1Seq = await append(userSubject(u1), [await users.registered(u1, 'one@example.org', 'User One', at)], 0); // 1: outside the range
    const u0 = uuidv7();
    const v1 = env.rt.registry.all().find((s) => s.ceType === 'relaygrid.identity.UserRegistered.v1')!;
    await publishRaw(userSubject(u0), v1.ceType, v1.schema, { userId: u0, email: 'legacy@example.org', registeredAt: at }); // 2: v1, as an old build wrote it
    await append(
      userSubject(u1),
      [
        { type: 'identity.RoleGranted', data: { userId: u1, role: 'analyst', grantedAt: at } },
        { type: 'identity.EmailVerified', data: { userId: u1, verifiedAt: at } },
        { type: 'identity.PrivacySettingsChanged', data: { userId: u1, presence: 'nobody', readReceipts: 'contacts', changedAt: at } },
      ],
      u1Seq,
    ); // 3: one commit, three events
    const s1 = uuidv7();
    await append(
      env.rt.names.aggregate('identity', 'session', s1),
      [{ type: 'identity.SessionStarted', data: { sessionId: s1, userId: u1, method: 'password', detailsSealed: Buffer.from([0, 1, 2, 250, 251, 255]), startedAt: at } }],
      0,
      { causationId: 'cause-1' },
    ); // 4
    await publishRaw(env.rt.names.aggregate('identity', 'loyalty', u1), LOYALTY_TYPE, LOYALTY_SCHEMA as unknown as Schema, {
      userId: u1,
      points: 9_223_372_036_854_775_807n,
      balance: -9_223_372_036_854_775_808n,
      awardedAt: at,
    }); // 5: 64-bit longs, a schema only the bucket has
    const u2 = uuidv7();
    await append(userSubject(u2), [await users.registered(u2, 'two@example.org', null, at)], 0); // 6
    const u3 = uuidv7();
    await append(userSubject(u3), [await users.registered(u3, 'three@example.org', 'Drei', at)], 0); // 7
    const u4 = uuidv7();
    await append(userSubject(u4), [await users.registered(u4, 'four@example.org', 'Four', at)], 0); // 8: outside the range
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
    await env?.cleanup();
  });

  /** The sub-range every export below takes: messages 2 to 7 of the fill. */
  const range = () => ({ from: seqs[1]!, to: seqs[6]! });
  const inRange = () => expected.filter((e) => e.seq >= range().from && e.seq <= range().to);
  const opts = (over: Partial<ExportOptions>): ExportOptions => ({
    stream,
    from: { seq: range().from },
    to: { seq: range().to },
    types: [],
    format: 'ndjson',
    out: join(dir, `${Math.random().toString(36).slice(2)}.ndjson`),
    ...over,
  });
  const readLines = async (path: string): Promise<Line[]> =>
    (await readFile(path, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Line);

  async function readAvro(path: string) {
    const { stdout } = await run(PYTHON, ['-c', READ_AVRO, path], { maxBuffer: 64 * 1024 * 1024 });
    return JSON.parse(stdout) as { file: string; meta: Record<string, string>; codec: string; records: Record<string, unknown>[] }[];
  }

  it('ndjson: exactly the events of the range, in order, with their attributes and writer-schema data', async () => {
    const o = opts({});
    const result = await exportRange(env.rt, o);
    const lines = await readLines(o.out);
    expect(result).toMatchObject({ range: { stream, ...range() }, exported: lines.length, scanned: lines.length });
    expect(lines.map((l) => [l.sequence, l.id, l.type, l.natsSubject, l.data])).toEqual(inRange().map((e) => [e.seq, e.id, e.type, e.natsSubject, e.data]));
    // The v1 event keeps its v1 shape (no v3 fields defaulted in); the long survives as a string; bytes are base64.
    const legacy = lines.find((l) => l.type === 'relaygrid.identity.UserRegistered.v1')!;
    expect(Object.keys(legacy.data as object)).toEqual(['userId', 'email', 'registeredAt']);
    expect(lines.find((l) => l.type === LOYALTY_TYPE)?.data).toMatchObject({ points: '9223372036854775807', balance: '-9223372036854775808' });
    expect(lines.find((l) => l.type === 'relaygrid.identity.SessionStarted.v1')?.data).toMatchObject({ detailsSealed: 'AAEC+vv/', startedAt: '2026-11-24T10:00:00.123Z' });
    // CloudEvents attributes from the headers; optional ones only when present; commit entries share the message's.
    const commit = lines.filter((l) => l.sequence === seqs[2]);
    expect(commit.map((l) => l.type)).toEqual(['relaygrid.identity.RoleGranted.v1', 'relaygrid.identity.EmailVerified.v1', 'relaygrid.identity.PrivacySettingsChanged.v1']);
    const first = commit[0]!;
    expect(Object.keys(first)).toEqual(['specversion', 'id', 'type', 'source', 'time', 'subject', 'dataschema', 'actor', 'correlationid', 'traceparent', 'sequence', 'natsSubject', 'data']);
    expect(first).toMatchObject({ specversion: '1.0', source: 'relaygrid/test', actor: 'system:test', correlationid: 'corr-1', traceparent: meta.traceparent });
    expect(first.dataschema).toBe(env.rt.registry.currentOf('identity.RoleGranted').fingerprint);
    expect(lines.find((l) => l.type === 'relaygrid.identity.SessionStarted.v1')?.causationid).toBe('cause-1');
    expect(legacy).not.toHaveProperty('actor');
  });

  it('avro: python3-avro opens the files unaided and reads exactly the events and values of the ndjson export', async () => {
    const ndjson = opts({});
    await exportRange(env.rt, ndjson);
    const lines = await readLines(ndjson.out);
    const out = join(dir, 'avro-range');
    const result = await exportRange(env.rt, opts({ format: 'avro', out }));
    const files = await readAvro(out);

    // One file per writer schema, named after its CloudEvents type.
    const byType = new Map<string, number>();
    for (const l of lines) byType.set(l.type, (byType.get(l.type) ?? 0) + 1);
    expect(files.map((f) => f.file)).toEqual([...byType.keys()].map((t) => `${t.replace(/^relaygrid\./, '')}.avro`).sort());
    expect(result.files.map((f) => [f.path, f.events])).toEqual(files.map((f) => [join(out, f.file), f.records.length]));
    for (const f of files) {
      const type = f.meta['relaygrid.type']!;
      const fingerprint = lines.find((l) => l.type === type)!.dataschema;
      expect(f.meta).toEqual({
        'relaygrid.stream': stream,
        'relaygrid.from': String(range().from),
        'relaygrid.to': String(range().to),
        'relaygrid.fingerprints': JSON.stringify([fingerprint]),
        'relaygrid.type': type,
      });
      expect(f.codec).toBe('null');
    }

    // Same events, same values: an Avro record is an NDJSON line with null for the absent attributes.
    const records = files
      .flatMap((f) => f.records)
      .map((r): Record<string, unknown> => Object.fromEntries(Object.entries({ ...r, sequence: Number(r['sequence']) }).filter(([, v]) => v !== null)));
    const key = (r: Record<string, unknown>) => `${String(r['sequence']).padStart(10, '0')} ${String(r['id'])}`;
    expect(records.sort((a, b) => key(a).localeCompare(key(b)))).toEqual([...lines].sort((a, b) => key(a).localeCompare(key(b))));
    expect(records.find((r) => r['type'] === LOYALTY_TYPE)?.['data']).toMatchObject({ points: '9223372036854775807', balance: '-9223372036854775808', awardedAt: '2026-11-24T10:00:00.123Z' });
  });

  it('--type keeps the named events (every version, or one), commit entries included; --subject keeps one aggregate', async () => {
    const byKey = opts({ types: ['identity.UserRegistered', 'relaygrid.identity.EmailVerified.v1'] });
    const result = await exportRange(env.rt, byKey);
    const lines = await readLines(byKey.out);
    const wanted = inRange().filter((e) => e.type.startsWith('relaygrid.identity.UserRegistered.') || e.type === 'relaygrid.identity.EmailVerified.v1');
    expect(lines.map((l) => l.id)).toEqual(wanted.map((e) => e.id));
    expect(new Set(lines.map((l) => l.type))).toEqual(new Set(['relaygrid.identity.UserRegistered.v1', 'relaygrid.identity.UserRegistered.v3', 'relaygrid.identity.EmailVerified.v1']));
    expect(result.scanned).toBe(inRange().length);

    const u1Subject = expected[0]!.natsSubject;
    const one = opts({ from: undefined, to: undefined, subject: u1Subject, format: 'avro', out: join(dir, 'avro-subject') });
    await exportRange(env.rt, one);
    const files = await readAvro(one.out);
    expect(files.flatMap((f) => f.records.map((r) => r['id'])).sort()).toEqual(expected.filter((e) => e.natsSubject === u1Subject).map((e) => e.id).sort());
    expect(files.every((f) => f.meta['relaygrid.filter.subject'] === u1Subject)).toBe(true);
  });

  it('time bounds select by stored time, both inclusive', async () => {
    const storedAt = async (seq: number) => (await env.rt.nats.jsm.direct.getMessage(stream, { seq }))!.time;
    const o = opts({ from: { time: await storedAt(seqs[2]!) }, to: { time: await storedAt(seqs[5]!) } });
    const result = await exportRange(env.rt, o);
    expect(result.range).toMatchObject({ from: seqs[2], to: seqs[5] });
    const lines = await readLines(o.out);
    expect(lines.map((l) => l.id)).toEqual(expected.filter((e) => e.seq >= seqs[2]! && e.seq <= seqs[5]!).map((e) => e.id));
  });

  it('an empty range writes an empty export', async () => {
    const o = opts({ from: { seq: 1_000_000 }, to: undefined, format: 'avro', out: join(dir, 'avro-empty') });
    const result = await exportRange(env.rt, o);
    expect(result).toMatchObject({ exported: 0, files: [] });
    expect(await readdir(o.out)).toEqual([]);
  });

  it('the Python example of docs/analysts.md decodes the stream without Relaygrid code, as the ndjson export does', async () => {
    const docs = await readFile(DOCS, 'utf8');
    const script = /<!-- example: read_stream\.py[^>]*-->\s*```python\n([\s\S]*?)```/.exec(docs)?.[1];
    expect(script).toBeTruthy();
    const path = join(dir, 'read_stream.py');
    await writeFile(path, script!);
    const server = new URL(env.config.natsUrl.split(',')[0]!).host;
    const { stdout } = await run(PYTHON, [path, server, stream, String(range().from), String(range().to), env.rt.names.schemaBucket]);
    const printed = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const o = opts({});
    await exportRange(env.rt, o);
    // The script prints longs as JSON numbers; compare the events without 64-bit fields exactly, the rest by identity.
    const lines = (await readLines(o.out)).map((l) => ({ sequence: l.sequence, id: l.id, type: l.type, time: l['time'], subject: l['subject'], data: l.type === LOYALTY_TYPE ? 'long' : l.data }));
    expect(printed.map((p) => ({ ...p, data: p['type'] === LOYALTY_TYPE ? 'long' : p['data'] }))).toEqual(lines);
    expect(stdout).toContain('"points": 9223372036854775807');
  });

  describe('the CLI', () => {
    const cli = (args: string[]) => runCli(env.config, ['replay', ...args]);

    it('exports and ends with one summary line: events, seconds, events/s, files', async () => {
      const out = join(dir, 'cli-avro');
      const result = await cli(['export', '--stream', stream, '--from', String(range().from), '--to', String(range().to), '--format', 'avro', '--out', out]);
      expect(result.code, result.stderr).toBe(0);
      const n = inRange().length;
      expect(result.stdout).toMatch(new RegExp(`^export ${stream} ${range().from}\\.\\.${range().to}: ${n} events in \\d+\\.\\d\\d s \\(\\d[\\d,]* events/s\\), 7 files written: .*identity\\.UserRegistered\\.v3\\.avro \\(2\\)`));
      expect(result.stdout.trim().split('\n')).toHaveLength(1);
      expect((await readAvro(out)).flatMap((f) => f.records)).toHaveLength(n);
    });

    it('schemas: every schema of the bucket with its fingerprint, this build\'s marked', async () => {
      const json = await cli(['schemas', '--json']);
      expect(json.code, json.stderr).toBe(0);
      const rows = JSON.parse(json.stdout) as { type: string; version: number; ceType: string; fingerprint: string; published: boolean; inCatalogue: boolean; current: boolean }[];
      for (const s of env.rt.registry.all()) {
        expect(rows).toContainEqual(expect.objectContaining({ ceType: s.ceType, fingerprint: s.fingerprint, published: true, inCatalogue: true, current: env.rt.registry.currentOf(s.key) === s }));
      }
      expect(rows).toContainEqual(expect.objectContaining({ type: 'identity.LoyaltyAwarded', version: 1, ceType: LOYALTY_TYPE, published: true, inCatalogue: false, current: false }));
      const text = await cli(['schemas']);
      expect(text.code, text.stderr).toBe(0);
      expect(text.stdout).toMatch(/identity\.UserRegistered\s+v3\s+relaygrid\.identity\.UserRegistered\.v3\s+sha256:[0-9a-f]{64}\s+current/);
      expect(text.stdout).toMatch(/identity\.LoyaltyAwarded\s+v1\s+\S+\s+sha256:[0-9a-f]{64}\s+no/);
    });

    it.each([
      [['--stream', 'RG_NOPE'], /--stream: no stream "RG_NOPE" \(streams of namespace T[0-9A-F]+: .*_IDENTITY/],
      [['--from', '5', '--to', '3'], /--from: must not be after --to/],
      [['--from', '2026-11-02T00:00:00Z', '--to', '2026-11-01T00:00:00Z'], /--from: must not be after --to/],
      [['--from', 'yesterday'], /--from: "yesterday" is neither a stream sequence nor an ISO time/],
      [['--type', 'identity.Nope'], /--type: unknown event type "identity.Nope" \(known: .*identity\.UserRegistered/],
      [['--subject', 'elsewhere.>'], /--subject: "elsewhere.>" is not within stream/],
      [['--format', 'csv'], /--format: "csv" is not one of avro, ndjson/],
      [['--format', null], /--format: avro or ndjson/],
      [['--out', null], /--out: where to write/],
      [['--out', 'FILE_UNDER_A_FILE'], /--out: cannot write ".*": a part of the path is not a directory/],
      [['--format', 'avro', '--out', 'NON_EMPTY_DIR'], /--out: directory ".*" is not empty/],
      [['--frm', '3'], /Unknown option '--frm'/],
    ] as [(string | null)[], RegExp][])('bad arguments %j: one line, exit 2, no stack trace', async (overrides, message) => {
      await writeFile(join(dir, 'a-file'), '');
      await mkdir(join(dir, 'non-empty'), { recursive: true });
      await writeFile(join(dir, 'non-empty', 'x'), '');
      const flags = new Map<string, string | null>([
        ['--stream', stream],
        ['--format', 'ndjson'],
        ['--out', join(dir, 'bad.ndjson')],
      ]);
      for (let i = 0; i < overrides.length; i += 2) flags.set(overrides[i]!, overrides[i + 1] ?? null);
      const path = (v: string) => (v === 'FILE_UNDER_A_FILE' ? join(dir, 'a-file', 'x.ndjson') : v === 'NON_EMPTY_DIR' ? join(dir, 'non-empty') : v);
      const args = [...flags].flatMap(([k, v]) => (v === null ? [] : [k, path(v)]));
      const result = await cli(['export', ...args]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(result.stderr).not.toMatch(/\n\s+at /);
      expect(result.stdout).toBe('');
    });
  });
});
