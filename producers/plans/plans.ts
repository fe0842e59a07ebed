/** The plans context as one object the API, the CLI, the scheduler and tests hold: the catalogue and users' subscriptions. */
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import { Catalogue } from './catalogue.js';
import { PlansDeps } from './plans-deps.js';
import { PlanSubscriptions } from './subscriptions.js';

export class Plans {
  readonly deps: PlansDeps;
  readonly catalogue: Catalogue;
  readonly subscriptions: PlanSubscriptions;

  constructor(opts: { handler: CommandHandler; db: Kysely<Database> }) {
    this.deps = new PlansDeps(opts.handler, opts.db);
    this.catalogue = new Catalogue(this.deps);
    this.subscriptions = new PlanSubscriptions(this.deps, this.catalogue);
  }
}
