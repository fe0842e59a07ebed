/** The messaging context's HTTP half as one object the API and tests hold: devices and keys, contacts and blocks, groups. */
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import { Devices } from './devices.js';
import { Directory } from './directory.js';
import { Groups } from './groups.js';
import { KeyTransparency, type ProveEvent } from './key-transparency.js';
import { CLAIMS_PER_MINUTE } from './limits.js';
import { MessagingDeps } from './messaging-deps.js';

export class Messaging {
  readonly deps: MessagingDeps;
  readonly devices: Devices;
  readonly directory: Directory;
  readonly groups: Groups;
  readonly transparency: KeyTransparency;

  constructor(opts: { handler: CommandHandler; db: Kysely<Database>; redis: Redis; claimsPerMinute?: number; proveEvent?: ProveEvent }) {
    this.deps = new MessagingDeps(opts.handler, opts.db, opts.redis);
    this.devices = new Devices(this.deps, opts.claimsPerMinute ?? CLAIMS_PER_MINUTE);
    this.directory = new Directory(this.deps);
    this.groups = new Groups(this.deps);
    this.transparency = new KeyTransparency(this.deps, opts.proveEvent);
  }
}
