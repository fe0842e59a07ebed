/**
 * Writer schemas by fingerprint, as any client sees them: the schema bucket
 * first (what is published is what analysts can decode), this build's
 * catalogue second (a schema not yet published by `migrate`). Exports decode
 * every event with its own writer schema, never resolved to a newer version,
 * so nothing is defaulted or dropped.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { Schema, Type } from 'avsc';
import { avroType } from '../../contracts/avro-types.js';
import { fingerprintHex, keyOfCeType, type SchemaRegistry } from '../../contracts/codec.js';
import { fetchSchema, type SchemaDocument } from '../../infra/streams/schema-bucket.js';
import type { Nats } from '../../infra/nats/connection.js';
import type { Names } from '../../infra/naming.js';

export interface WriterSchema {
  /** `sha256:<hex>` */
  fingerprint: string;
  /** CloudEvents type, `relaygrid.<context>.<Event>.v<N>` */
  ceType: string;
  /** `<context>.<Event>`, or undefined for a type not written by Relaygrid's naming. */
  key: string | undefined;
  version: number;
  /** The schema as published (with docs, defaults and logical types). */
  schema: Schema;
  /** In the schema bucket. */
  published: boolean;
  /** In this build's catalogue. */
  inCatalogue: boolean;
  /** The version this build writes for its event. */
  current: boolean;
  /** The avsc type (long → bigint, timestamp-millis → Date), built on first use. */
  readonly type: Type;
}

function entry(fields: Omit<WriterSchema, 'type'>, known?: Type): WriterSchema {
  let type = known;
  return {
    ...fields,
    get type() {
      return (type ??= avroType(fields.schema));
    },
  };
}

export class WriterSchemas {
  private constructor(
    private readonly byPrint: Map<string, WriterSchema>,
    private readonly kv: KV | undefined,
    readonly bucket: string,
    private readonly registry: SchemaRegistry,
  ) {}

  /** Every schema of the bucket and the catalogue; `bucketFound` is false when the bucket does not exist. */
  static async load(deps: { nats: Nats; names: Names; registry: SchemaRegistry }): Promise<WriterSchemas> {
    const bucket = deps.names.schemaBucket;
    const kv = await openExisting(deps.nats, bucket);
    const schemas = new WriterSchemas(new Map(), kv, bucket, deps.registry);
    if (kv) {
      const keys: string[] = [];
      for await (const key of await kv.keys()) keys.push(key);
      const docs = await Promise.all(keys.map(async (key) => [key, await fetchSchema(kv, key)] as const));
      for (const [key, doc] of docs) if (doc) schemas.add(`sha256:${key}`, doc);
    }
    for (const registered of deps.registry.all()) {
      if (!schemas.byPrint.has(registered.fingerprint)) {
        schemas.byPrint.set(
          registered.fingerprint,
          entry(
            { fingerprint: registered.fingerprint, ceType: registered.ceType, key: registered.key, version: registered.version, schema: registered.schema, published: false, inCatalogue: true, current: schemas.isCurrent(registered.fingerprint) },
            registered.type,
          ),
        );
      }
    }
    return schemas;
  }

  get bucketFound(): boolean {
    return this.kv !== undefined;
  }

  private isCurrent(fingerprint: string): boolean {
    const registered = this.registry.byPrint(fingerprint);
    return registered !== undefined && this.registry.currentOf(registered.key) === registered;
  }

  private add(fingerprint: string, doc: SchemaDocument): WriterSchema {
    const registered = this.registry.byPrint(fingerprint);
    const schema = entry(
      {
        fingerprint,
        ceType: doc.type,
        key: keyOfCeType(doc.type),
        version: doc.version,
        schema: doc.schema,
        published: true,
        inCatalogue: registered !== undefined,
        current: this.isCurrent(fingerprint),
      },
      // Same fingerprint, same canonical form: the catalogue's type reads the same bytes, and is built already.
      registered?.type,
    );
    this.byPrint.set(fingerprint, schema);
    return schema;
  }

  /** The writer schema of `fingerprint` (`sha256:<hex>` or bare hex) among those loaded. */
  get(fingerprint: string): WriterSchema | undefined {
    return this.byPrint.get(fingerprint.startsWith('sha256:') ? fingerprint : `sha256:${fingerprint}`);
  }

  /** Looks a fingerprint up in the bucket again: a schema published after this export started. */
  async fetch(fingerprint: string): Promise<WriterSchema | undefined> {
    const known = this.get(fingerprint);
    if (known || !this.kv) return known;
    const doc = await fetchSchema(this.kv, fingerprint);
    return doc ? this.add(`sha256:${fingerprintHex(fingerprint)}`, doc) : undefined;
  }

  /** Sorted by event type, then version. */
  list(): WriterSchema[] {
    return [...this.byPrint.values()].sort((a, b) => a.ceType.localeCompare(b.ceType, 'en', { numeric: true }) || a.fingerprint.localeCompare(b.fingerprint));
  }
}

/** The bucket if it exists: opening must not create it (that is migrate's job, with its settings). */
async function openExisting(nats: Nats, bucket: string): Promise<KV | undefined> {
  try {
    await nats.jsm.streams.info(`KV_${bucket}`);
  } catch (err) {
    if ((err as { code?: unknown }).code === 404 || /not found/i.test((err as Error).message)) return undefined;
    throw err;
  }
  return new Kvm(nats.js).open(bucket);
}
