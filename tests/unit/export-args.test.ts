/** The flags and filters of `replay export`: each mistake is one ReplayArgumentError naming the flag. */
import { describe, expect, it } from 'vitest';
import { parseExportArgs } from '../../replay/export/args.js';
import { checkSubjectFilter, subjectWithin, typeFilter } from '../../replay/export/filters.js';
import type { WriterSchema, WriterSchemas } from '../../replay/export/writer-schemas.js';
import { ReplayArgumentError } from '../../replay/range.js';

const base = ['--stream', 'RG_IDENTITY', '--format', 'ndjson', '--out', 'x.ndjson'];

describe('replay export flags', () => {
  it('parses sequences, times, repeated types and a subject filter', () => {
    expect(parseExportArgs([...base, '--from', '5', '--to', '2026-11-24T10:00:00Z', '--type', 'identity.UserRegistered', '--type', 'relaygrid.identity.RoleGranted.v1', '--subject', 'rg.evt.identity.user.*'])).toEqual({
      stream: 'RG_IDENTITY',
      from: { seq: 5 },
      to: { time: new Date('2026-11-24T10:00:00Z') },
      types: ['identity.UserRegistered', 'relaygrid.identity.RoleGranted.v1'],
      subject: 'rg.evt.identity.user.*',
      format: 'ndjson',
      out: 'x.ndjson',
    });
  });

  it.each([
    [['--format', 'avro', '--out', 'd'], /--stream: name the stream/],
    [['--stream', 'S', '--out', 'd'], /--format: avro or ndjson/],
    [['--stream', 'S', '--format', 'parquet', '--out', 'd'], /--format: "parquet" is not one of avro, ndjson/],
    [['--stream', 'S', '--format', 'avro'], /--out: where to write: a directory/],
    [[...base, '--from', '0'], /--from: sequences start at 1/],
    [[...base, '--to', 'soon'], /--to: "soon" is neither/],
    [[...base, '--subject', 'a.>.b'], /--subject: "a.>.b" is not a NATS subject filter/],
    [[...base, '--subject', 'a..b'], /--subject/],
    [[...base, '--type', ' '], /--type: an event type/],
    [[...base, 'extra'], /Unexpected argument 'extra'/],
  ])('%j is refused', (args, message) => {
    expect(() => parseExportArgs(args)).toThrow(ReplayArgumentError);
    expect(() => parseExportArgs(args)).toThrow(message);
  });
});

describe('subject filters', () => {
  it.each([
    ['rg.evt.identity.user.>', 'rg.evt.identity.>', true],
    ['rg.evt.identity.user.abc', 'rg.evt.identity.>', true],
    ['rg.evt.identity.*.abc', 'rg.evt.identity.>', true],
    ['rg.evt.identity.>', 'rg.evt.identity.>', true],
    ['rg.evt.>', 'rg.evt.identity.>', false],
    ['rg.evt.*.user.x', 'rg.evt.identity.>', false],
    ['rg.evt.fleet.node.x', 'rg.evt.identity.>', false],
    ['a.b', 'a.*', true],
    ['a.*', 'a.b', false],
    ['a.b.c', 'a.*', false],
    ['a', 'a.>', false],
  ])('%s within %s: %s', (filter, pattern, within) => {
    expect(subjectWithin(filter, pattern)).toBe(within);
  });

  it('a stream that only sources others takes any filter', () => {
    expect(() => checkSubjectFilter('RG_AUDIT', [], 'anything.>')).not.toThrow();
    expect(() => checkSubjectFilter('RG_IDENTITY', ['rg.evt.identity.>'], 'rg.evt.fleet.>')).toThrow(/not within stream RG_IDENTITY's subjects \(rg\.evt\.identity\.>\)/);
  });
});

describe('type filters', () => {
  const known = (ceType: string) => ({ ceType, key: /^relaygrid\.(.+)\.v\d+$/.exec(ceType)?.[1] }) as WriterSchema;
  const schemas = {
    list: () => ['relaygrid.core.Commit.v1', 'relaygrid.identity.UserRegistered.v1', 'relaygrid.identity.UserRegistered.v3', 'relaygrid.identity.RoleGranted.v1'].map(known),
  } as unknown as WriterSchemas;

  it('an event key keeps every version, a CloudEvents type one version', () => {
    const keep = typeFilter(['identity.UserRegistered', 'relaygrid.identity.RoleGranted.v1'], schemas)!;
    expect(['relaygrid.identity.UserRegistered.v1', 'relaygrid.identity.UserRegistered.v3', 'relaygrid.identity.RoleGranted.v1', 'relaygrid.identity.RoleGranted.v2', 'relaygrid.identity.EmailVerified.v1'].map(keep)).toEqual([true, true, true, false, false]);
    expect(typeFilter([], schemas)).toBeUndefined();
  });

  it('refuses unknown types and the commit envelope, naming what is known', () => {
    expect(() => typeFilter(['identity.Nope'], schemas)).toThrow(/--type: unknown event type "identity.Nope" \(known: identity.RoleGranted, identity.UserRegistered;/);
    expect(() => typeFilter(['relaygrid.identity.UserRegistered.v2'], schemas)).toThrow(/unknown event type/);
    expect(() => typeFilter(['core.Commit'], schemas)).toThrow(/envelope of multi-event commits/);
  });
});
