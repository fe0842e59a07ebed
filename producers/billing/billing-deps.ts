/** What the billing context's services share (producers/context-deps.ts): orders, invoices and their numbering series. */
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import { ContextDeps } from '../context-deps.js';
import type { CommandHandler } from '../event-store/command-handler.js';

export type BillingAggregate = 'order' | 'invoice' | 'document-series';

export class BillingDeps extends ContextDeps<BillingAggregate> {
  constructor(handler: CommandHandler, db: Kysely<Database>) {
    super('billing', handler, db);
  }
}
