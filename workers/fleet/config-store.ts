/**
 * Templates and rendered configurations, content-addressed in NATS object
 * stores and sealed under the fleet key (they hold REALITY private keys and
 * every user's proxy credentials, so the bytes at rest are ciphertext).
 *
 * - A template is the profile set one node runs (`<NS>_FLEET_TEMPLATES`,
 *   named by the hash of its rendered inbounds): what rollouts point at, kept
 *   for roll-backs.
 * - A configuration is a template plus today's users (`<NS>_FLEET_CONFIGS`,
 *   named `<template>/<version>`, its own hash being the version agents
 *   report), served by version to agents fetching it in chunks. Rendered on demand, once
 *   per template and users revision, and shared by every node with that template.
 */
import { Objm, type ObjectStore } from '@nats-io/obj';
import type { Kysely } from 'kysely';
import type { Nats } from '../../infra/nats/connection.js';
import type { Names } from '../../infra/naming.js';
import type { Database } from '../../schema/database.js';
import { open, seal } from '../../producers/identity/crypto/sealing.js';
import { Lru } from '../../producers/event-store/lru.js';
import { proxyUserOf, type InboundProfile, type ProxyUser } from '../../producers/fleet/model.js';
import { contentHash, renderConfig, renderTemplate } from './render/render.js';

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
  private loadingUsers?: Promise<{ revision: number; list: ProxyUser[] }>;
  private users?: { revision: number; list: ProxyUser[] };

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
   * The configuration of a template with every active user, as of the
   * proxy-credentials read model's current checkpoint.
   */
  async render(template: string): Promise<RenderedConfig> {
    const users = await this.activeUsers();
    const key = `${template}@${users.revision}`;
    const cached = this.rendered.get(key);
    if (cached) return cached;
    // A wave of agents asks at once: one rendering serves them all.
    let pending = this.rendering.get(key);
    if (!pending) {
      pending = this.renderOnce(template, users.list, key).finally(() => this.rendering.delete(key));
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

  /** Active users' credentials, reloaded only when the proxy-credentials projector has moved. */
  private async activeUsers(): Promise<{ revision: number; list: ProxyUser[] }> {
    const checkpoint = await this.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', 'proxy-credentials').executeTakeFirst();
    const revision = checkpoint?.seq ?? 0;
    if (this.users?.revision === revision) return this.users;
    // A wave of agents after a change: one read of the table serves them all.
    this.loadingUsers ??= this.loadUsers(revision).finally(() => (this.loadingUsers = undefined));
    return this.loadingUsers;
  }

  private async loadUsers(revision: number): Promise<{ revision: number; list: ProxyUser[] }> {
    const rows = await this.db
      .selectFrom('proxy_credentials')
      .select(['user_id', 'vless_id', 'trojan_password', 'proxy_username', 'proxy_password'])
      .where('status', '=', 'active')
      .execute();
    const list = rows.map(proxyUserOf);
    this.users = { revision, list };
    return this.users;
  }
}
