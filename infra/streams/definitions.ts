/**
 * Streams and buckets as code. `migrate` applies these idempotently; a test reads
 * them back from the server, because nats-server 2.9 silently drops fields it
 * does not know and we want to learn that from a red test, not from an auditor.
 */
import { DiscardPolicy, RetentionPolicy, StorageType, type StreamConfig } from '@nats-io/jetstream';
import { EVENT_CONTEXTS } from '../../contracts/catalogue.js';
import type { Names } from '../naming.js';

/** Nats-Msg-Id deduplication window: a retried append within it is recognised as a duplicate. */
export const DUPLICATE_WINDOW_NS = 2 * 60 * 1_000_000_000;

export type StreamSpec = Partial<StreamConfig> & { name: string };

/** Settings every event stream (and the audit and checkpoint streams) shares: keep everything, forever, immutably. The guard and inbox streams start from them too. */
function immutableLog(replicas: number): Omit<StreamSpec, 'name'> {
  return {
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_msgs: -1,
    max_bytes: -1,
    max_age: 0,
    max_msgs_per_subject: -1,
    max_consumers: -1,
    num_replicas: replicas,
    duplicate_window: DUPLICATE_WINDOW_NS,
    deny_delete: true,
    deny_purge: true,
    allow_rollup_hdrs: false,
    allow_direct: true,
  };
}

export function eventStreams(names: Names, replicas: number): StreamSpec[] {
  const contexts: StreamSpec[] = EVENT_CONTEXTS.map((context) => ({
    name: names.stream(context),
    description: `Relaygrid ${context} events (${names.namespace})`,
    subjects: [names.contextSubjects(context)],
    ...immutableLog(replicas),
  }));
  const audit: StreamSpec = {
    name: names.auditStream,
    description: `Relaygrid audit log: every event of every context (${names.namespace})`,
    sources: EVENT_CONTEXTS.map((context) => ({ name: names.stream(context) })),
    ...immutableLog(replicas),
  };
  // Signed checkpoints of the audit log, kept forever; the directory copy outside NATS is the one auditors rely on.
  const checkpoints: StreamSpec = {
    name: names.auditCheckpointStream,
    description: `Relaygrid audit log: signed checkpoints of ${names.auditStream} (${names.namespace})`,
    subjects: [names.auditCheckpointSubject],
    ...immutableLog(replicas),
  };
  return [...contexts, audit, checkpoints];
}

/**
 * Append guards (producers/event-store/append-guard.ts): the last claim of
 * each aggregate, nothing older. Not an event stream, and sourced by nothing:
 * that is its point.
 */
export function guardStream(names: Names, replicas: number): StreamSpec {
  return {
    name: names.guardStream,
    description: `Relaygrid append guards: the last claim per aggregate (${names.namespace})`,
    subjects: [`${names.prefix}.guard.>`],
    ...immutableLog(replicas),
    max_msgs_per_subject: 1,
  };
}

/**
 * The messenger's inboxes. Ciphertext never enters the immutable log: entries
 * are deleted once acknowledged, and the gateway's sweeper removes them when
 * their ttl or the retention runs out (recording MessageExpired). max_age is
 * the backstop an hour after that, for when no gateway runs.
 */
export function inboxStream(names: Names, replicas: number, retentionSeconds: number): StreamSpec {
  return {
    name: names.inboxStream,
    description: `Relaygrid messenger inboxes: ciphertext until acknowledged or expired (${names.namespace})`,
    subjects: [names.inboxSubjects],
    ...immutableLog(replicas),
    max_age: (retentionSeconds + 3600) * 1_000_000_000,
    deny_delete: false,
    deny_purge: false,
  };
}

export interface BucketSpec {
  name: string;
  description: string;
  history: number;
}

export function keyValueBuckets(names: Names): BucketSpec[] {
  return [{ name: names.schemaBucket, description: 'Avro schemas keyed by SHA-256 fingerprint (hex) of their canonical form', history: 1 }];
}

export interface ObjectBucketSpec {
  name: string;
  description: string;
  /** Seconds an object lives; 0 keeps it. */
  ttlSeconds: number;
}

/** The fleet's object stores: templates are what rollouts (and roll-backs) point at; configurations are re-rendered whenever asked. */
export function objectBuckets(names: Names): ObjectBucketSpec[] {
  return [
    { name: names.fleetTemplateBucket, description: 'Fleet: sealed inbound templates by content hash', ttlSeconds: 0 },
    { name: names.fleetConfigBucket, description: 'Fleet: sealed rendered node configurations by content hash', ttlSeconds: 7 * 86_400 },
    { name: names.edgeCertBucket, description: 'Edge: sealed ACME certificates and keys by site, and the ACME account key', ttlSeconds: 0 },
  ];
}
