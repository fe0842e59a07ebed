/**
 * Inbound profiles: creation (a REALITY profile gets a fresh X25519 key pair
 * and short ids), update and removal, and the profiles as the renderer needs
 * them, secrets opened. Secrets are sealed under the fleet key before they
 * enter an event and are opened only here, from the log: no read model or log
 * line ever holds them.
 */
import type { Selectable } from 'kysely';
import type { FleetProfileTable } from '../../schema/database.js';
import { DomainError } from '../decider.js';
import { API_TAG } from '../../workers/agent/core/local-api.js';
import type { Actor } from '../identity/identity-deps.js';
import { open, seal } from '../identity/crypto/sealing.js';
import type { Written } from '../messaging/messaging-deps.js';
import type { FleetDeps } from './fleet-deps.js';
import type { InboundProfile, ProfileKind, ProfileSecrets, ProfileSettings } from './model.js';
import { profileDecider } from './profile.decider.js';
import { validateProfileInput } from './profile-validation.js';
import { generateRealityKeys, generateShortIds } from './reality-keys.js';

const PROFILE_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export interface ProfileView {
  profileId: string;
  kind: ProfileKind;
  port: number;
  labels: string[];
  settings: ProfileSettings;
  removed: boolean;
  sequence: number;
}

function profileView(row: Selectable<FleetProfileTable>): ProfileView {
  return { profileId: row.id, kind: row.kind as ProfileKind, port: row.port, labels: row.labels, settings: row.settings, removed: row.removed, sequence: row.last_seq };
}

function checkId(profileId: unknown): string {
  if (typeof profileId !== 'string' || !PROFILE_ID.test(profileId)) {
    throw new DomainError('invalid_profile', 'profileId: must be 1-63 lower-case letters, digits, "-" or "_"', { field: 'profileId' });
  }
  // The profile id is the inbound's tag, and the agent's own API inbound is tagged `api` (workers/agent/core/local-api.ts).
  if (profileId === API_TAG) throw new DomainError('invalid_profile', `profileId: "${API_TAG}" is the node agent's own inbound`, { field: 'profileId' });
  return profileId;
}

export class Profiles {
  /** Opened secrets by profile id: they never change after creation. */
  private readonly secrets = new Map<string, ProfileSecrets>();

  constructor(private readonly d: FleetDeps) {}

  async create(input: Record<string, unknown>, actor: Actor, now = new Date()): Promise<Written & { profile: ProfileView }> {
    const profileId = checkId(input['profileId']);
    const valid = validateProfileInput(input);
    const secrets: ProfileSecrets = {};
    const settings: ProfileSettings = { ...valid.settings };
    if (valid.kind === 'vless-reality') {
      const keys = generateRealityKeys();
      secrets.realityPrivateKey = keys.privateKey;
      settings.publicKey = keys.publicKey;
      settings.shortIds ??= generateShortIds(4);
      settings.fingerprint ??= 'chrome';
    }
    const secretsSealed = Object.keys(secrets).length > 0 ? seal(this.d.secretKey, profileId, JSON.stringify(secrets)) : Buffer.alloc(0);
    const { seq } = await this.d.decide(profileDecider, 'profile', profileId, { type: 'CreateProfile', profileId, ...valid, settings, secretsSealed, at: now }, actor);
    return { seq, profile: { profileId, kind: valid.kind, port: valid.port, labels: valid.labels, settings, removed: false, sequence: seq } };
  }

  /** Port, labels and public settings; the kind and the REALITY keys stay (a new key pair is a new profile). */
  async update(profileId: string, input: Record<string, unknown>, actor: Actor, now = new Date()): Promise<Written> {
    // From the log, not the read model: an update right after the creation must find the profile.
    const { state } = await this.d.handler.load(profileDecider, this.d.subject('profile', checkId(profileId)));
    if (!state.kind || state.removed) throw new DomainError('profile_not_found', `no profile ${profileId}`);
    const valid = validateProfileInput({ ...input, kind: state.kind });
    const settings: ProfileSettings = { ...valid.settings };
    if (state.kind === 'vless-reality') {
      const current = JSON.parse(state.settingsJson) as ProfileSettings;
      settings.publicKey = current.publicKey;
      settings.shortIds ??= current.shortIds;
      settings.fingerprint ??= current.fingerprint;
    }
    const { seq } = await this.d.decide(profileDecider, 'profile', profileId, { type: 'UpdateProfile', profileId, port: valid.port, labels: valid.labels, settings, at: now }, actor);
    return { seq };
  }

  async remove(profileId: string, actor: Actor, now = new Date()): Promise<Written> {
    const { seq } = await this.d.decide(profileDecider, 'profile', checkId(profileId), { type: 'RemoveProfile', profileId, at: now }, actor);
    return { seq };
  }

  async view(profileId: string): Promise<ProfileView> {
    const row = await this.d.db.selectFrom('fleet_profiles').selectAll().where('id', '=', profileId).executeTakeFirst();
    if (!row) throw new DomainError('profile_not_found', `no profile ${profileId}`);
    return profileView(row);
  }

  async list(): Promise<ProfileView[]> {
    const rows = await this.d.db.selectFrom('fleet_profiles').selectAll().where('removed', '=', false).orderBy('id').execute();
    return rows.map(profileView);
  }

  /** Every live profile with its secrets opened: what templates are rendered from. */
  async forRendering(): Promise<InboundProfile[]> {
    const views = await this.list();
    return Promise.all(views.map(async (v) => ({ profileId: v.profileId, kind: v.kind, port: v.port, labels: v.labels, settings: v.settings, secrets: await this.secretsOf(v.profileId) })));
  }

  private async secretsOf(profileId: string): Promise<ProfileSecrets> {
    const cached = this.secrets.get(profileId);
    if (cached) return cached;
    const { events } = await this.d.handler.store.read(this.d.subject('profile', profileId), 0);
    const created = (events).find((e) => e.type === 'fleet.ProfileCreated');
    const sealed = created?.type === 'fleet.ProfileCreated' ? created.data.secretsSealed : undefined;
    const secrets = sealed && sealed.length > 0 ? (JSON.parse(open(this.d.secretKey, profileId, sealed).toString('utf8')) as ProfileSecrets) : {};
    this.secrets.set(profileId, secrets);
    return secrets;
  }
}
