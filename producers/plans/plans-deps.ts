/** What the plans context's services share (producers/context-deps.ts): plans and users' subscriptions. */
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import { ContextDeps } from '../context-deps.js';
import type { CommandHandler } from '../event-store/command-handler.js';

export type PlansAggregate = 'plan' | 'subscription';

export class PlansDeps extends ContextDeps<PlansAggregate> {
  constructor(handler: CommandHandler, db: Kysely<Database>) {
    super('plans', handler, db);
  }
}
