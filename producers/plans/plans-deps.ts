/**
 * What the plans context's services share: the command handler, the read
 * models and how a decision on a plan or a subscription is appended.
 */
import type { Kysely } from 'kysely';
import type { EventMeta } from '../../contracts/envelope.js';
import type { EventKey } from '../../contracts/catalogue.js';
import type { Database } from '../../schema/database.js';
import type { Decider } from '../decider.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import type { Actor } from '../identity/identity-deps.js';

export type PlansAggregate = 'plan' | 'subscription';

export class PlansDeps {
  constructor(
    readonly handler: CommandHandler,
    readonly db: Kysely<Database>,
  ) {}

  subject(aggregate: PlansAggregate, id: string): string {
    return this.handler.store.names.aggregate('plans', aggregate, id);
  }

  meta(actor: Actor): EventMeta {
    return { source: 'relaygrid/plans', actor: actor.actor, correlationId: actor.correlationId, traceparent: actor.traceparent };
  }

  decide<S, C, K extends EventKey>(decider: Decider<S, C, K>, aggregate: PlansAggregate, id: string, command: C, actor: Actor) {
    return this.handler.handle(decider, this.subject(aggregate, id), command, { meta: this.meta(actor) });
  }

  load<S, K extends EventKey>(decider: Decider<S, never, K>, aggregate: PlansAggregate, id: string) {
    return this.handler.load(decider, this.subject(aggregate, id));
  }
}
