/** The projector role: runs the named projections (all of them by default) until stopped. */
import { Kvm, type KV } from '@nats-io/kv';
import { PROJECTIONS } from '../../projectors/catalogue.js';
import { Projector, type ProjectorDeps } from '../../projectors/runtime/projector.js';
import type { Runtime } from '../runtime.js';
import { requireMasterKey } from '../config.js';
import { PersonKeys } from '../../producers/identity/crypto/person-keys.js';
import { fetchSchema } from '../streams/schema-bucket.js';
import { CliError } from '../cli/cli-error.js';

export interface RunningProjectors {
  projectors: Projector[];
  /** Resolves when every projector loop has ended. */
  done: Promise<void>;
  close(): Promise<void>;
}

export class UnknownProjectorError extends CliError {
  readonly code = 'unknown_projector';
}

/** Everything a Projector needs from the process, but the projection itself. */
export function projectorDeps(rt: Runtime): Omit<ProjectorDeps, 'projection'> {
  // Opened on first need and kept; a missing bucket (projector started before
  // migrate) must not crash the process, only leave the unknown schema unknown
  // until a later lookup finds the bucket.
  let bucket: Promise<KV> | undefined;
  const schemaLookup = async (fingerprint: string) => {
    try {
      bucket ??= new Kvm(rt.nats.js).open(rt.names.schemaBucket);
      return await fetchSchema(await bucket, fingerprint);
    } catch (err) {
      bucket = undefined;
      rt.log.warn({ err, fingerprint }, 'schema bucket unavailable');
      return undefined;
    }
  };
  return {
    context: { keys: new PersonKeys(rt.db, requireMasterKey(rt.config)) },
    nats: rt.nats,
    db: rt.db,
    databaseUrl: rt.config.databaseUrl,
    names: rt.names,
    registry: rt.registry,
    metrics: rt.metrics,
    log: rt.log,
    schemaLookup,
  };
}

/** Refuses an unknown name; the CLI calls it before it connects. */
export function checkProjectorNames(names: readonly string[]): void {
  const unknown = names.find((name) => !PROJECTIONS.has(name));
  if (unknown !== undefined) throw new UnknownProjectorError(`unknown projector "${unknown}" (known: ${[...PROJECTIONS.keys()].join(', ')})`);
}

export function startProjectors(rt: Runtime, names: readonly string[] = [...PROJECTIONS.keys()], batchSize?: number): RunningProjectors {
  checkProjectorNames(names);
  const deps = projectorDeps(rt);
  const projectors = names.map((name) => new Projector({ ...deps, projection: PROJECTIONS.get(name)!, ...(batchSize ? { batchSize } : {}) }));
  const done = Promise.all(projectors.map((p) => p.run())).then(() => undefined);
  return {
    projectors,
    done,
    close: async () => {
      await Promise.all(projectors.map((p) => p.close()));
      await done;
    },
  };
}
