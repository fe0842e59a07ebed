/** The identity context as one object the API, the CLI and tests hold. */
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { AuthConfig } from '../../infra/config.js';
import type { Logger } from '../../infra/logger.js';
import type { Nats } from '../../infra/nats/connection.js';
import type { Database } from '../../schema/database.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import { Accounts } from './accounts.js';
import { Administration } from './administration.js';
import { Authentication } from './authentication.js';
import { IdentityDeps } from './identity-deps.js';
import { PasswordReset } from './password-reset.js';

export class Identity {
  readonly deps: IdentityDeps;
  readonly accounts: Accounts;
  readonly auth: Authentication;
  readonly admin: Administration;
  readonly passwordReset: PasswordReset;

  constructor(opts: { handler: CommandHandler; db: Kysely<Database>; redis: Redis; nats: Nats; masterKey: Buffer; auth: AuthConfig; log: Logger }) {
    this.deps = new IdentityDeps(opts.handler, opts.db, opts.redis, opts.nats, opts.masterKey, opts.auth, opts.log);
    this.accounts = new Accounts(this.deps);
    this.auth = new Authentication(this.deps);
    this.admin = new Administration(this.deps, this.accounts);
    this.passwordReset = new PasswordReset(this.deps, this.accounts);
  }

  start(): Promise<void> {
    return this.deps.revocations.start();
  }

  stop(): Promise<void> {
    return this.deps.revocations.stop();
  }
}
