/**
 * The Avro codec: a registry of writer schemas keyed by fingerprint, encoding
 * with the current version of each event and decoding any historical version
 * into the current shape through Avro schema resolution.
 *
 * Fingerprint: SHA-256 of the Parsing Canonical Form, written `sha256:<hex>` in
 * the `ce-dataschema` header (a valid URI, as CloudEvents asks) and keyed by the
 * bare hex in the schema KV bucket.
 */
import { createHash } from 'node:crypto';
import type { Resolver, Schema, Type } from 'avsc';
import { avroType } from './avro-types.js';

export interface RegisteredSchema {
  /** `<context>.<Event>` */
  key: string;
  version: number;
  /** CloudEvents type: `relaygrid.<context>.<Event>.v<N>` */
  ceType: string;
  /** `sha256:<hex>` */
  fingerprint: string;
  type: Type;
  /** The schema as written in its .avsc file (with defaults and logical types). */
  schema: Schema;
}

export class UnknownSchemaError extends Error {
  readonly code = 'unknown_schema';
  constructor(readonly fingerprint: string) {
    super(`no schema registered for ${fingerprint}`);
  }
}

export class SchemaResolutionError extends Error {
  readonly code = 'schema_incompatible';
}

export function fingerprintOf(type: Type): string {
  // avsc's schema() without options is the Parsing Canonical Form.
  return `sha256:${createHash('sha256').update(JSON.stringify(type.schema())).digest('hex')}`;
}

export function fingerprintHex(fingerprint: string): string {
  return fingerprint.startsWith('sha256:') ? fingerprint.slice(7) : fingerprint;
}

export function ceTypeOf(key: string, version: number): string {
  return `relaygrid.${key}.v${version}`;
}

/** The `<context>.<Event>` of a CloudEvents type written by ceTypeOf, or undefined for anything else. */
export function keyOfCeType(ceType: string): string | undefined {
  return /^relaygrid\.(.+)\.v\d+$/.exec(ceType)?.[1];
}

export class SchemaRegistry {
  private readonly byFingerprint = new Map<string, RegisteredSchema>();
  private readonly current = new Map<string, RegisteredSchema>();
  /** Resolvers are costly to build; one per (writer, reader) pair. */
  private readonly resolvers = new Map<string, Resolver | null>();

  /** Adds a schema of the catalogue; the highest version of each event becomes the current one. */
  register(key: string, version: number, schema: Schema): RegisteredSchema {
    const entry = this.add(key, version, schema);
    const latest = this.current.get(key);
    if (!latest || latest.version < version) this.current.set(key, entry);
    return entry;
  }

  /**
   * Adds a writer schema learned at run time (from the schema bucket) so its
   * messages can be decoded. Unlike register() it never changes the version
   * this process writes and reads, unless the event was unknown altogether.
   */
  learn(key: string, version: number, schema: Schema): RegisteredSchema {
    const entry = this.add(key, version, schema);
    if (!this.current.has(key)) this.current.set(key, entry);
    return entry;
  }

  private add(key: string, version: number, schema: Schema): RegisteredSchema {
    const type = avroType(schema);
    const entry: RegisteredSchema = { key, version, ceType: ceTypeOf(key, version), fingerprint: fingerprintOf(type), type, schema };
    this.byFingerprint.set(entry.fingerprint, entry);
    return entry;
  }

  /** The version code writes and reads for this event. */
  currentOf(key: string): RegisteredSchema {
    const entry = this.current.get(key);
    if (!entry) throw new Error(`event ${key} is not in the catalogue`);
    return entry;
  }

  byPrint(fingerprint: string): RegisteredSchema | undefined {
    return this.byFingerprint.get(fingerprint.startsWith('sha256:') ? fingerprint : `sha256:${fingerprint}`);
  }

  all(): RegisteredSchema[] {
    return [...this.byFingerprint.values()];
  }

  encode(key: string, data: unknown): { fingerprint: string; ceType: string; bytes: Buffer } {
    const entry = this.currentOf(key);
    return { fingerprint: entry.fingerprint, ceType: entry.ceType, bytes: entry.type.toBuffer(data) };
  }

  /** Decodes bytes written with `fingerprint` into the current version of the same event. */
  decode(fingerprint: string, bytes: Uint8Array): { key: string; data: unknown } {
    const writer = this.byPrint(fingerprint);
    if (!writer) throw new UnknownSchemaError(fingerprint);
    const reader = this.currentOf(writer.key);
    const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (reader === writer) return { key: writer.key, data: reader.type.fromBuffer(buf) };
    const resolver = this.resolver(writer, reader);
    return { key: writer.key, data: reader.type.fromBuffer(buf, resolver) };
  }

  /** Throws SchemaResolutionError when data written with `writer` cannot be read with `reader`. */
  resolver(writer: RegisteredSchema, reader: RegisteredSchema): Resolver {
    const cacheKey = `${writer.fingerprint}>${reader.fingerprint}`;
    let resolver = this.resolvers.get(cacheKey);
    if (resolver === undefined) {
      try {
        resolver = reader.type.createResolver(writer.type);
      } catch (err) {
        throw new SchemaResolutionError(
          `${writer.ceType} (${writer.fingerprint}) cannot be read as ${reader.ceType}: ${(err as Error).message}`,
        );
      }
      this.resolvers.set(cacheKey, resolver);
    }
    if (resolver === null) throw new SchemaResolutionError(`${writer.ceType} cannot be read as ${reader.ceType}`);
    return resolver;
  }
}
