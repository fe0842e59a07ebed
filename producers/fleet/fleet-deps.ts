/**
 * What the fleet's services share: the command handler, the read models, the
 * NATS connection (pushes to agents, the object stores), the fleet's secret
 * key, and the helpers every decision needs.
 */
import { sql, type Kysely } from 'kysely';
import type { EventMeta } from '../../contracts/envelope.js';
import type { EventKey } from '../../contracts/catalogue.js';
import type { Logger } from '../../infra/logger.js';
import type { Nats } from '../../infra/nats/connection.js';
import type { Names } from '../../infra/naming.js';
import type { Database } from '../../schema/database.js';
import { DomainError, type Decider } from '../decider.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import type { Actor } from '../identity/identity-deps.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { deriveKey } from '../identity/crypto/sealing.js';
import type { CoreUser } from '../../workers/agent/core/driver.js';

export type FleetAggregate = 'node' | 'profile' | 'rollout';

/** What a push to an agent says (core NATS, at most once: the agent's periodic sync is the safety net). */
export type AgentPush =
  /** Ask for your desired version again; the fleet read model has reached `minSeq`. */
  | { type: 'desired'; minSeq: number }
  /**
   * Users to add to and remove from the running core's inbounds, now, as the
   * core's HandlerService takes them (rendered by the fleet for the node's
   * template). HTTP and SOCKS accounts cannot change without a restart: the
   * agent restarts its core for those at its next sync.
   */
  | { type: 'users'; template: string; add: { tag: string; user: CoreUser }[]; remove: { tag: string; email: string }[] }
  /** Close this user's open connections from this client IP (they are over their IP limit); the user stays on the core. */
  | { type: 'cut-ip'; userId: string; ip: string }
  /** Edge nodes: the sites changed; ask for your edge desired state again (`edge-desired`). */
  | { type: 'edge' };

export class FleetDeps {
  readonly names: Names;
  /** Seals profile secrets in events and templates/configurations in the object stores. */
  readonly secretKey: Buffer;

  constructor(
    readonly handler: CommandHandler,
    readonly db: Kysely<Database>,
    readonly nats: Nats,
    masterKey: Buffer,
    readonly log: Logger,
    private readonly watcher: Pick<CheckpointWatcher, 'waitFor'>,
  ) {
    this.names = handler.store.names;
    this.secretKey = deriveKey(masterKey, 'fleet-secrets');
  }

  subject(aggregate: FleetAggregate, id: string): string {
    return this.names.aggregate('fleet', aggregate, id);
  }

  meta(actor: Actor): EventMeta {
    return { source: 'relaygrid/fleet', actor: actor.actor, correlationId: actor.correlationId, traceparent: actor.traceparent };
  }

  async decide<S, C, K extends EventKey>(decider: Decider<S, C, K>, aggregate: FleetAggregate, id: string, command: C, actor: Actor, assumeNew = false) {
    return this.handler.handle(decider, this.subject(aggregate, id), command, { meta: this.meta(actor), assumeNew });
  }

  /**
   * Waits until the fleet read model holds everything the fleet stream held
   * when called (or `seq`): a rollout planned right after a profile change must see it.
   * 503 read_model_behind when it does not within the timeout.
   */
  async fleetReadModelAt(seq?: number, timeoutMs = 10_000): Promise<void> {
    const wanted = seq ?? (await this.nats.jsm.streams.info(this.names.stream('fleet'))).state.last_seq;
    if (!(await this.watcher.waitFor('fleet', wanted, timeoutMs))) {
      throw new DomainError('read_model_behind', `the fleet read model has not reached sequence ${wanted} yet; retry`);
    }
  }

  /**
   * Runs `fn` while holding a Postgres advisory lock named `name`: one at a
   * time across every process of the installation (advisory locks are per
   * database), on a connection of its own for the lock's whole life.
   */
  async exclusively<T>(name: string, fn: () => Promise<T>): Promise<T> {
    return this.db.connection().execute(async (conn) => {
      await sql`select pg_advisory_lock(hashtext(${name}))`.execute(conn);
      try {
        return await fn();
      } finally {
        await sql`select pg_advisory_unlock(hashtext(${name}))`.execute(conn);
      }
    });
  }

  push(nodeId: string, message: AgentPush): void {
    this.nats.nc.publish(this.names.fleetPush(nodeId), JSON.stringify(message));
  }
}
