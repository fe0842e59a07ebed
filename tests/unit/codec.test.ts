import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { catalogueRegistry } from '../../contracts/catalogue.js';
import { SCHEMA_FILES } from '../../contracts/catalogue.generated.js';
import { SchemaRegistry, UnknownSchemaError, fingerprintHex } from '../../contracts/codec.js';
import { avroType } from '../../contracts/avro-types.js';
import type { Schema } from 'avsc';

const counterSchema: Schema = {
  type: 'record',
  name: 'Counter',
  namespace: 'relaygrid.test',
  fields: [
    { name: 'bytes', type: 'long' },
    { name: 'at', type: { type: 'long', logicalType: 'timestamp-millis' } },
  ],
};

describe('codec', () => {
  it('fingerprints the Parsing Canonical Form with SHA-256', () => {
    const registry = new SchemaRegistry();
    const entry = registry.register('test.Counter', 1, { ...(counterSchema as object), doc: 'docs are not part of the canonical form' } as Schema);
    const canonical = '{"name":"relaygrid.test.Counter","type":"record","fields":[{"name":"bytes","type":"long"},{"name":"at","type":"long"}]}';
    expect(entry.fingerprint).toBe(`sha256:${createHash('sha256').update(canonical).digest('hex')}`);
    expect(fingerprintHex(entry.fingerprint)).toHaveLength(64);
  });

  it('keeps 64-bit counters exact and timestamps as dates', () => {
    const type = avroType(counterSchema);
    const value = { bytes: 9_223_372_036_854_775_807n, at: new Date('2026-11-23T10:00:00.123Z') };
    const decoded = type.fromBuffer(type.toBuffer(value)) as { bytes: bigint; at: Date };
    expect(decoded.bytes).toBe(9_223_372_036_854_775_807n);
    expect(decoded.at).toEqual(value.at);
  });

  it('refuses a number where a 64-bit counter is expected instead of rounding it', () => {
    const type = avroType(counterSchema);
    expect(() => type.toBuffer({ bytes: 2 ** 60, at: new Date() })).toThrow();
  });

  it('reads a v1 UserRegistered as the current v3 with the defaults, its plaintext email no longer read', () => {
    const registry = catalogueRegistry();
    const v1 = registry.all().find((s) => s.ceType === 'relaygrid.identity.UserRegistered.v1')!;
    expect(registry.currentOf('identity.UserRegistered').version).toBe(3);
    const at = new Date('2026-01-02T03:04:05.006Z');
    const bytes = v1.type.toBuffer({ userId: 'u1', email: 'a@example.org', registeredAt: at });
    const decoded = registry.decode(v1.fingerprint, bytes);
    // v3 keeps personal data only sealed: the v1 plaintext address is dropped by schema resolution.
    expect(decoded).toEqual({
      key: 'identity.UserRegistered',
      data: { userId: 'u1', emailHash: '', emailSealed: null, displayNameSealed: null, passwordHashSealed: null, roles: [], registeredAt: at },
    });
  });

  it('builds one resolver per writer and reader pair', () => {
    const registry = catalogueRegistry();
    const v1 = registry.all().find((s) => s.ceType === 'relaygrid.identity.UserRegistered.v1')!;
    const v3 = registry.currentOf('identity.UserRegistered');
    expect(registry.resolver(v1, v3)).toBe(registry.resolver(v1, v3));
  });

  it('names the fingerprint it does not know', () => {
    expect(() => catalogueRegistry().decode('sha256:00', Buffer.alloc(0))).toThrow(UnknownSchemaError);
  });
});

describe('catalogue compatibility (BACKWARD_TRANSITIVE)', () => {
  const registry = catalogueRegistry();
  for (const entry of SCHEMA_FILES) {
    const key = `${entry.context}.${entry.name}`;
    it(`${key} v${entry.version} is readable by the current reader`, () => {
      const writer = registry.all().find((s) => s.key === key && s.version === entry.version)!;
      const reader = registry.currentOf(key);
      expect(() => registry.resolver(writer, reader)).not.toThrow();
      // And a random value written with it decodes under the current reader.
      const sample = writer.type.random() as unknown;
      expect(() => {
        reader.type.fromBuffer(writer.type.toBuffer(sample), registry.resolver(writer, reader));
      }).not.toThrow();
    });
  }

  it('fails when a new version drops a field without default', () => {
    const incompatible = new SchemaRegistry();
    const v1 = incompatible.register('t.E', 1, { type: 'record', name: 'E', fields: [{ name: 'a', type: 'string' }] });
    const v2 = incompatible.register('t.E', 2, { type: 'record', name: 'E', fields: [{ name: 'b', type: 'string' }] });
    expect(() => incompatible.resolver(v1, v2)).toThrow(/cannot be read/);
  });
});
