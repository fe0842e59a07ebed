/**
 * Templates and rendered configurations, content-addressed in NATS object
 * stores and sealed under the fleet key (they hold REALITY private keys and
 * every user's proxy credentials, so the bytes at rest are ciphertext).
 *
 * - A template is the profile set one node runs (`<NS>_FLEET_TEMPLATES`,
 *   named by the hash of its rendered inbounds): what rollouts point at, kept
 *   for roll-backs.
 * - A configuration is a template plus today's users of the node
 *   (`<NS>_FLEET_CONFIGS`, named `<template>/<version>`, its own hash being
 *   the version agents report), served by version to agents fetching it in
 *   chunks. Which users depends on the node's labels (their plans name the
 *   nodes they may use, entitled-users.ts), so it is rendered on demand once
 *   per template, access key and users revision, and shared by every node
 *   with the same template and the same labels that plans name.
 */
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { Kysely } from 'kysely';
import type { Nats } from '../../infra/nats/connection.js';
import type { Names } from '../../infra/naming.js';
import type { Database } from '../../schema/database.js';
import { open, seal } from '../../producers/identity/crypto/sealing.js';
import { Lru } from '../../producers/event-store/lru.js';
import type { InboundProfile, ProxyUser } from '../../producers/fleet/model.js';
import { contentHash, renderConfig, renderTemplate } from './render/render.js';
import { accessKey, entitledUsers, namedLabels, usersOnNode, type EntitledUser } from './entitled-users.js';

export interface RenderedConfig {
  template: string;
  version: string;
  bytes: Uint8Array;
}

/** Objects of the configuration bucket are named by template and version, so a version is only ever served as its own template's. */
const configName = (template: string, version: string) => `${template}/${version}`;

export class ConfigStore {
  private templates?: ObjectStore;
  private configs?: ObjectStore;
  private readonly profilesByTemplate = new Lru<string, InboundProfile[]>(256);
  private readonly rendered = new Lru<string, RenderedConfig>(64);
  private readonly rendering = new Map<string, Promise<RenderedConfig>>();
  private readonly byName = new Lru<string, Uint8Array>(64);
  private loadingUsers?: { generation: number; promise: Promise<Entitled> };
  private users?: Entitled;
  private generation = 0;
  private loads = 0;

  constructor(
    private readonly nats: Nats,
    private readonly names: Names,
    private readonly db: Kysely<Database>,
    private readonly key: Buffer,
  ) {}

  private async stores(): Promise<{ templates: ObjectStore; configs: ObjectStore }> {
    const objm = new Objm(this.nats.js);
    this.templates ??= await objm.open(this.names.fleetTemplateBucket);
    this.configs ??= await objm.open(this.names.fleetConfigBucket);
    return { templates: this.templates, configs: this.configs };
  }

  /** Stores the profile set of a node (once per content) and answers its hash. */
  async putTemplate(profiles: InboundProfile[]): Promise<string> {
    const hash = contentHash(renderTemplate(profiles));
    if (this.profilesByTemplate.get(hash)) return hash;
    const { templates } = await this.stores();
    if (!(await templates.info(hash))) {
      await templates.putBlob({ name: hash }, seal(this.key, `${this.names.fleetTemplateBucket}/${hash}`, JSON.stringify(profiles)));
    }
    this.profilesByTemplate.set(hash, profiles);
    return hash;
  }

  async templateProfiles(hash: string): Promise<InboundProfile[]> {
    const cached = this.profilesByTemplate.get(hash);
    if (cached) return cached;
    const { templates } = await this.stores();
    const blob = await templates.getBlob(hash);
    if (!blob) throw new Error(`template ${hash} is not in ${this.names.fleetTemplateBucket}`);
    const profiles = JSON.parse(open(this.key, `${this.names.fleetTemplateBucket}/${hash}`, blob).toString('utf8')) as InboundProfile[];
    this.profilesByTemplate.set(hash, profiles);
    return profiles;
  }

  /**
   * The configuration of a template for a node with these labels: every user
   * entitled to it, as of the proxy-credentials and plans read models'
   * current checkpoints.
   */
  async render(template: string, nodeLabels: readonly string[]): Promise<RenderedConfig> {
    const users = await this.entitled();
    const key = `${template}@${accessKey(users.named, nodeLabels)}@${users.load}`;
    const cached = this.rendered.get(key);
    if (cached) return cached;
    // A wave of agents asks at once: one rendering serves them all.
    let pending = this.rendering.get(key);
    if (!pending) {
      pending = this.renderOnce(template, usersOnNode(users.list.values(), nodeLabels), key).finally(() => this.rendering.delete(key));
      this.rendering.set(key, pending);
    }
    return pending;
  }

  private async renderOnce(template: string, users: ProxyUser[], key: string): Promise<RenderedConfig> {
    const profiles = await this.templateProfiles(template);
    const config = renderConfig(renderTemplate(profiles), profiles, users);
    const version = contentHash(config);
    const result: RenderedConfig = { template, version, bytes: Buffer.from(JSON.stringify(config, null, 2)) };
    const name = configName(template, version);
    const { configs } = await this.stores();
    if (!(await configs.info(name))) await configs.putBlob({ name }, seal(this.key, `${this.names.fleetConfigBucket}/${name}`, Buffer.from(result.bytes)));
    this.rendered.set(key, result);
    this.byName.set(name, result.bytes);
    return result;
  }

  /**
   * A configuration by version, only as a rendering of `template` (the node's
   * own): from memory, else from the object store. An agent fetching in chunks
   * keeps getting the version it started with while users change meanwhile.
   */
  async configBytes(template: string, version: string): Promise<Uint8Array | null> {
    const name = configName(template, version);
    const cached = this.byName.get(name);
    if (cached) return cached;
    const { configs } = await this.stores();
    const blob = await configs.getBlob(name);
    if (!blob) return null;
    const bytes = open(this.key, `${this.names.fleetConfigBucket}/${name}`, blob);
    this.byName.set(name, bytes);
    return bytes;
  }

  /**
   * The user sync calls this once the read models have a batch of changes,
   * before pushing them: the next rendering reads users again, so no agent
   * syncing after the push can be handed a version without the change.
   */
  invalidateUsers(): void {
    this.generation++;
  }

  /**
   * Entitled users. Read again after invalidateUsers(), and otherwise when the
   * proxy-credentials or plans checkpoint has moved but not more than once
   * per RELOAD_MS: during a burst of plans events (a thousand users limited
   * in one tick) every sync would otherwise read and render anew, and the
   * pushes, not the renderings, are what carry those changes to the nodes.
   */
  private async entitled(): Promise<Entitled> {
    const rows = await this.db.selectFrom('projector_checkpoints').select(['projector', 'seq']).where('projector', 'in', REVISION_PROJECTORS).execute();
    const revision = REVISION_PROJECTORS.map((p) => rows.find((r) => r.projector === p)?.seq ?? 0).join('.');
    const users = this.users;
    if (users && users.generation === this.generation && (users.revision === revision || Date.now() - users.loadedAt < RELOAD_MS)) return users;
    // A wave of agents after a change: one read of the tables serves them all.
    if (this.loadingUsers?.generation !== this.generation) {
      const generation = this.generation;
      const promise = this.loadUsers(revision, generation).finally(() => {
        if (this.loadingUsers?.promise === promise) this.loadingUsers = undefined;
      });
      this.loadingUsers = { generation, promise };
    }
    return this.loadingUsers.promise;
  }

  private async loadUsers(revision: string, generation: number): Promise<Entitled> {
    const list = await entitledUsers(this.db);
    const loaded: Entitled = { load: ++this.loads, revision, generation, loadedAt: Date.now(), list, named: namedLabels(list.values()) };
    if (generation === this.generation) this.users = loaded;
    return loaded;
  }
}

/** At most one read of users per this long for checkpoint moves alone (invalidateUsers() reads at once). */
const RELOAD_MS = 2_000;

/** The read models users on nodes come from: their checkpoints together are the users revision. */
const REVISION_PROJECTORS = ['proxy-credentials', 'plans'];

interface Entitled {
  /** Which read of the tables: the users revision renderings are cached by. */
  load: number;
  revision: string;
  generation: number;
  loadedAt: number;
  list: Map<string, EntitledUser>;
  /** The node labels some plan of `list` names. */
  named: Set<string>;
}
