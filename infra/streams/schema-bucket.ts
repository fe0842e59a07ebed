/**
 * The schema bucket: every writer schema Relaygrid knows, keyed by the hex
 * SHA-256 fingerprint of its canonical form, valued by the full .avsc JSON (with
 * defaults and logical types). Any NATS client can decode any message it reads:
 * take `ce-dataschema`, strip `sha256:`, get that key.
 */
import { Kvm, type KV } from '@nats-io/kv';
import type { Schema } from 'avsc';
import type { SchemaRegistry } from '../../contracts/codec.js';
import { fingerprintHex } from '../../contracts/codec.js';
import type { Nats } from '../nats/connection.js';
import type { BucketSpec } from './definitions.js';

export interface PublishedSchemas {
  bucket: string;
  published: number;
  unchanged: number;
}

export async function openBucket(nats: Nats, spec: BucketSpec, replicas: number): Promise<KV> {
  return new Kvm(nats.js).create(spec.name, { history: spec.history, description: spec.description, replicas });
}

/** Schema document stored per fingerprint: what a foreign client needs to decode and to name the event. */
export interface SchemaDocument {
  type: string;
  version: number;
  schema: Schema;
}

export async function publishSchemas(kv: KV, bucket: string, registry: SchemaRegistry): Promise<PublishedSchemas> {
  let published = 0;
  let unchanged = 0;
  for (const entry of registry.all()) {
    const key = fingerprintHex(entry.fingerprint);
    if (await kv.get(key)) {
      unchanged++;
      continue;
    }
    const doc: SchemaDocument = { type: entry.ceType, version: entry.version, schema: entry.schema };
    await kv.create(key, JSON.stringify(doc));
    published++;
  }
  return { bucket, published, unchanged };
}

export async function fetchSchema(kv: KV, fingerprint: string): Promise<SchemaDocument | undefined> {
  const entry = await kv.get(fingerprintHex(fingerprint));
  return entry ? entry.json<SchemaDocument>() : undefined;
}
