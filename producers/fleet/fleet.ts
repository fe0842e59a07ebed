/** The fleet context as one object the API, the fleet worker and tests hold: nodes, profiles, templates and rollouts. */
import type { Kysely } from 'kysely';
import type { Logger } from '../../infra/logger.js';
import type { Nats } from '../../infra/nats/connection.js';
import type { Database } from '../../schema/database.js';
import { ConfigStore } from '../../workers/fleet/config-store.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { FleetDeps } from './fleet-deps.js';
import { Nodes } from './nodes.js';
import { Profiles } from './profiles.js';
import { Rollouts } from './rollouts.js';
import { FleetViews } from './views.js';

export class Fleet {
  readonly deps: FleetDeps;
  readonly nodes: Nodes;
  readonly profiles: Profiles;
  readonly configs: ConfigStore;
  readonly rollouts: Rollouts;
  readonly views: FleetViews;

  constructor(opts: { handler: CommandHandler; db: Kysely<Database>; nats: Nats; masterKey: Buffer; log: Logger; watcher: Pick<CheckpointWatcher, 'waitFor'> }) {
    this.deps = new FleetDeps(opts.handler, opts.db, opts.nats, opts.masterKey, opts.log, opts.watcher);
    this.nodes = new Nodes(this.deps);
    this.profiles = new Profiles(this.deps);
    this.configs = new ConfigStore(opts.nats, this.deps.names, opts.db, this.deps.secretKey);
    this.rollouts = new Rollouts(this.deps, this.profiles, this.configs);
    this.views = new FleetViews(opts.db);
  }
}
