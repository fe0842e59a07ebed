/**
 * What a read model provides to the projector runtime: which events it reads
 * and how a batch of them becomes rows. The runtime owns everything else:
 * ordering, batching, transactions, checkpoints, locking, failures, metrics.
 */
import type { Transaction } from 'kysely';
import type { EventContext } from '../../contracts/catalogue.js';
import type { StoredEvent } from '../../contracts/envelope.js';
import type { Names } from '../../infra/naming.js';
import type { Database } from '../../schema/database.js';
import type { PersonKeys } from '../../producers/identity/crypto/person-keys.js';

/** What a projection may use beside its transaction: the keyring, to open personal data sealed in events. */
export interface ProjectionContext {
  keys: PersonKeys;
}

export interface Projection {
  /** Stable name: the checkpoint row, the advisory lock and the metric label. */
  readonly name: string;
  /** The context stream it reads. */
  readonly context: EventContext;
  /** The read-model tables it writes, and only those: a blue/green rebuild builds fresh copies of exactly these. */
  readonly tables: readonly (keyof Database)[];
  /** One subject filter inside that stream (nats-server 2.9 has no multi-filter consumers). */
  filter(names: Names): string;
  /**
   * Applies a batch, in order, inside the runtime's transaction. Fold per key
   * first and write set-based: one statement per table, not per event. Events
   * of types it does not know are ignored.
   */
  apply(trx: Transaction<Database>, events: readonly StoredEvent[], ctx: ProjectionContext): Promise<void>;
}
