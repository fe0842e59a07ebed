/**
 * What the messaging services share: the command handler, the read models
 * they consult, the claim limiter, and the helpers every decision needs
 * (subjects, event metadata, "does this user exist").
 */
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { EventMeta } from '../../contracts/envelope.js';
import type { Database } from '../../schema/database.js';
import { DomainError, type Decider } from '../decider.js';
import type { EventKey } from '../../contracts/catalogue.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import { AbuseLimits } from '../identity/abuse-limits.js';
import type { Actor } from '../identity/identity-deps.js';
import { userDecider } from '../identity/user.decider.js';
import { OneTimePreKeys } from './one-time-prekeys.js';

/** What a write answers: the sequence its read model is known to have reached. */
export interface Written {
  seq: number;
}

/** Ids the users read model does not know yet that are looked up in the log, per call. */
const MAX_UNPROJECTED_LOOKUPS = 8;

export class MessagingDeps {
  readonly preKeys: OneTimePreKeys;
  readonly limits: AbuseLimits;

  constructor(
    readonly handler: CommandHandler,
    readonly db: Kysely<Database>,
    redis: Redis,
  ) {
    this.preKeys = new OneTimePreKeys(db);
    this.limits = new AbuseLimits(redis, handler.store.names.namespace);
  }

  subject(aggregate: 'devices' | 'contacts' | 'group', id: string): string {
    return this.handler.store.names.aggregate('messaging', aggregate, id);
  }

  meta(actor: Actor): EventMeta {
    return { source: 'relaygrid/messaging', actor: actor.actor, correlationId: actor.correlationId, traceparent: actor.traceparent };
  }

  /** One decision, with the actor in the events' metadata. */
  async decide<S, C, K extends EventKey>(decider: Decider<S, C, K>, aggregate: 'devices' | 'contacts' | 'group', id: string, command: C, actor: Actor, assumeNew = false): Promise<Written & { state: S }> {
    const result = await this.handler.handle(decider, this.subject(aggregate, id), command, { meta: this.meta(actor), assumeNew });
    return { seq: result.seq, state: result.state };
  }

  /**
   * Whether `requesterId` may see `userId`'s keys: user_not_found for an
   * account that is not live, false for someone the user blocked. A block must
   * not be observable, so callers answer as for a user without devices.
   */
  async keysVisible(requesterId: string, userId: string): Promise<boolean> {
    if (!(await this.liveUsers([userId])).has(userId)) throw new DomainError('user_not_found', `no user ${userId}`);
    const blocked = await this.db.selectFrom('blocks').select('user_id').where('user_id', '=', userId).where('blocked_id', '=', requesterId).executeTakeFirst();
    return !blocked;
  }

  /**
   * The ids among `ids` that are live accounts. The users read model answers
   * for almost everyone in one query; the few it does not know yet (registered
   * a moment ago) are read from their aggregates, so a fresh account is never
   * refused for projection lag. At most a few are read that way: a request
   * naming a thousand made-up ids must not cost a thousand stream reads.
   */
  async liveUsers(ids: readonly string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    const rows = await this.db.selectFrom('users').select(['id', 'status']).where('id', 'in', [...ids]).execute();
    const live = new Set(rows.filter((r) => r.status !== 'forgotten').map((r) => r.id));
    const known = new Set(rows.map((r) => r.id));
    const unseen = ids.filter((id) => !known.has(id)).slice(0, MAX_UNPROJECTED_LOOKUPS);
    const states = await Promise.all(unseen.map((id) => this.handler.load(userDecider, this.handler.store.names.aggregate('identity', 'user', id))));
    states.forEach(({ state }, i) => {
      if (state.userId && state.status !== 'forgotten') live.add(unseen[i]!);
    });
    return live;
  }
}
