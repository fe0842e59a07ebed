/**
 * What a context's services share: the command handler, the read models and
 * how a decision on one of its aggregates is appended
 * (`<ns>.evt.<context>.<aggregate>.<id>`, meta with the context as source).
 * Contexts with nothing else to share (plans, billing, edge) use it as is.
 */
import type { Kysely } from 'kysely';
import type { EventMeta } from '../contracts/envelope.js';
import type { EventContext, EventKey } from '../contracts/catalogue.js';
import type { Database } from '../schema/database.js';
import type { Decider } from './decider.js';
import type { CommandHandler, HandleOptions } from './event-store/command-handler.js';
import type { Actor } from './identity/identity-deps.js';

export class ContextDeps<Aggregate extends string> {
  constructor(
    readonly context: EventContext,
    readonly handler: CommandHandler,
    readonly db: Kysely<Database>,
  ) {}

  subject(aggregate: Aggregate, id: string): string {
    return this.handler.store.names.aggregate(this.context, aggregate, id);
  }

  meta(actor: Actor): EventMeta {
    return { source: `relaygrid/${this.context}`, actor: actor.actor, correlationId: actor.correlationId, traceparent: actor.traceparent };
  }

  decide<S, C, K extends EventKey>(decider: Decider<S, C, K>, aggregate: Aggregate, id: string, command: C, actor: Actor, opts: Omit<HandleOptions, 'meta'> = {}) {
    return this.handler.handle(decider, this.subject(aggregate, id), command, { ...opts, meta: this.meta(actor) });
  }

  load<S, K extends EventKey>(decider: Decider<S, never, K>, aggregate: Aggregate, id: string) {
    return this.handler.load(decider, this.subject(aggregate, id));
  }
}
