/**
 * `relaygrid migrate`: streams, KV buckets, published schemas and Postgres
 * tables, all idempotent. A second run reports everything unchanged.
 */
import type { Kysely } from 'kysely';
import type { SchemaRegistry } from '../contracts/codec.js';
import type { Database } from '../schema/database.js';
import { migrateDatabase } from '../schema/db.js';
import type { Logger } from './logger.js';
import type { Names } from './naming.js';
import type { Nats } from './nats/connection.js';
import { applyStream, type ApplyOutcome } from './streams/apply.js';
import { Objm } from '@nats-io/obj';
import { eventStreams, guardStream, inboxStream, keyValueBuckets, objectBuckets } from './streams/definitions.js';
import type { Config } from './config.js';
import { openBucket, publishSchemas, type PublishedSchemas } from './streams/schema-bucket.js';

export interface MigrateReport {
  streams: ApplyOutcome[];
  schemas: PublishedSchemas;
  tables: string[];
}

export async function migrate(deps: {
  nats: Nats;
  db: Kysely<Database>;
  names: Names;
  registry: SchemaRegistry;
  replicas: number;
  log: Logger;
  config: Pick<Config, 'messaging'>;
}): Promise<MigrateReport> {
  const { nats, db, names, registry, replicas, log } = deps;
  const streams: ApplyOutcome[] = [];
  // Context streams first: the audit stream sources them. The checkpoint stream is migrate's too: services may not create streams.
  for (const spec of [...eventStreams(names, replicas), guardStream(names, replicas), inboxStream(names, replicas, deps.config.messaging.inboxRetentionSeconds)]) {
    const outcome = await applyStream(nats.jsm, spec);
    log.info(outcome, 'stream');
    streams.push(outcome);
  }
  const [schemaBucket] = keyValueBuckets(names);
  if (!schemaBucket) throw new Error('schema bucket is not declared');
  const kv = await openBucket(nats, schemaBucket, replicas);
  const schemas = await publishSchemas(kv, schemaBucket.name, registry);
  log.info(schemas, 'schemas');
  for (const spec of objectBuckets(names)) {
    await new Objm(nats.js).create(spec.name, { description: spec.description, replicas, ttl: spec.ttlSeconds * 1_000_000_000 });
    log.info({ name: spec.name }, 'object store');
  }
  const { applied } = await migrateDatabase(db);
  log.info({ applied }, 'postgres migrations');
  return { streams, schemas, tables: applied };
}
