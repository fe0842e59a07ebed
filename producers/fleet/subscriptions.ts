/**
 * Subscription links: one secret URL per user that proxy clients (v2rayN,
 * sing-box, Clash.Meta) poll for the user's endpoints on every node serving
 * right now.
 *
 * The token is `<userId>.<mac>`, the MAC an HMAC-SHA256 under a key derived
 * from the master key over the user id and their credentials' generation.
 * Nothing is stored: rotating the proxy credentials bumps the generation, and
 * with it every link handed out before stops working, as it should, since the
 * old links would otherwise keep serving the new credentials.
 *
 * A link lists only what the user's plan allows (producers/plans/access.ts):
 * nothing without a subscription that gives access, else the nodes whose
 * labels the plan names and the profiles of the kinds it names.
 *
 * What clients get is built from the templates the nodes run (ConfigStore),
 * whose profiles carry the REALITY private keys: only the public settings are
 * copied out, field by field, before anything reaches the formats.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from '../../infra/logger.js';
import type { Database } from '../../schema/database.js';
import type { ConfigStore } from '../../workers/fleet/config-store.js';
import { deriveKey } from '../identity/crypto/sealing.js';
import { accessOn, givesAccess, nodeAllowed, type AccessTerms } from '../plans/access.js';
import { currentUsage } from '../plans/metering-queries.js';
import { proxyUserOf, type InboundProfile, type ProfileSettings, type ProxyUser } from './model.js';
import { describeEndpoints, type ClientProfile, type Endpoint, type EndpointSource } from './subscription/endpoint.js';

/** 22 base64url characters: 132 bits of the MAC, plenty against guessing and short enough for a URL. */
const MAC_CHARS = 22;
const MAC = new RegExp(`^[A-Za-z0-9_-]{${MAC_CHARS}}$`);
const USER_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface Subscriber {
  user: ProxyUser;
  /** False while the user is suspended (credentials revoked): they get an empty list, not an error, so clients keep the link. */
  active: boolean;
  generation: number;
  /** The user's subscription as links need it; null without one. */
  plan: LinkPlan | null;
}

/** A subscription as its link shows it: what it allows, and this period's figures for `subscription-userinfo`. */
export interface LinkPlan extends AccessTerms {
  uplinkBytes: bigint;
  downlinkBytes: bigint;
  /** This period's allowance with what grants covered of it and what is left of unexpired grants (metering's `total`); null = unlimited. */
  allowanceBytes: bigint | null;
  expiresAt: Date | null;
}

/** The settings a client needs to connect; the REALITY `dest` and TLS file paths are the node's business. */
function clientSettings(s: ProfileSettings): ProfileSettings {
  const out: ProfileSettings = {};
  if (s.serverNames) out.serverNames = [...s.serverNames];
  if (s.shortIds) out.shortIds = [...s.shortIds];
  if (s.publicKey) out.publicKey = s.publicKey;
  if (s.fingerprint) out.fingerprint = s.fingerprint;
  if (s.flow) out.flow = s.flow;
  return out;
}

/** A template's profile as clients may see it: picked field by field, so `secrets` cannot come along. */
export function clientProfile(p: InboundProfile): ClientProfile {
  return { profileId: p.profileId, kind: p.kind, port: p.port, settings: clientSettings(p.settings) };
}

/** Whether the subscriber may use anything at all: credentials active and a subscription that gives access. */
export function entitled(subscriber: Subscriber): subscriber is Subscriber & { plan: LinkPlan } {
  return subscriber.active && givesAccess(subscriber.plan);
}

export class Subscriptions {
  private readonly key: Buffer;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly configs: Pick<ConfigStore, 'templateProfiles'>,
    masterKey: Buffer,
    private readonly log: Logger,
  ) {
    this.key = deriveKey(masterKey, 'subscription-links');
  }

  /** The token for a user at a credentials generation. */
  token(userId: string, generation: number): string {
    return `${userId}.${this.mac(userId, generation)}`;
  }

  /** The user's current token; null while they have no proxy credentials. */
  async tokenOf(userId: string): Promise<string | null> {
    const row = await this.db.selectFrom('proxy_credentials').select('generation').where('user_id', '=', userId).executeTakeFirst();
    return row ? this.token(userId, row.generation) : null;
  }

  /** Whose subscription a token is; null for a malformed, forged or outdated token, all alike. */
  async resolve(token: string): Promise<Subscriber | null> {
    const dot = token.indexOf('.');
    const userId = token.slice(0, dot);
    const mac = token.slice(dot + 1);
    // Checked as ASCII first: timingSafeEqual needs equal byte lengths, and 22 characters need not be 22 bytes.
    if (dot < 0 || !USER_ID.test(userId) || !MAC.test(mac)) return null;
    const row = await this.db
      .selectFrom('proxy_credentials')
      .select(['user_id', 'generation', 'status', 'vless_id', 'trojan_password', 'proxy_username', 'proxy_password'])
      .where('user_id', '=', userId)
      .executeTakeFirst();
    if (!row) return null;
    // Constant time: the comparison must not tell an attacker how many leading characters they got right.
    if (!timingSafeEqual(Buffer.from(mac), Buffer.from(this.mac(userId, row.generation)))) return null;
    return { user: proxyUserOf(row), active: row.status === 'active', generation: row.generation, plan: await this.planOf(userId) };
  }

  private async planOf(userId: string, now = new Date()): Promise<LinkPlan | null> {
    // This period's usage and room as metering has them: the same figures as GET /v1/account/subscription.
    const row = await this.db
      .selectFrom('subscriptions')
      .innerJoin(currentUsage(now).as('c'), 'c.user_id', 'subscriptions.user_id')
      .select(['subscriptions.status', 'subscriptions.overage', 'node_labels', 'inbound_kinds', 'subscriptions.expires_at', 'c.uplink', 'c.downlink', 'c.total'])
      .where('subscriptions.user_id', '=', userId)
      .executeTakeFirst();
    if (!row) return null;
    return {
      status: row.status,
      overage: row.overage,
      nodeLabels: row.node_labels,
      inboundKinds: row.inbound_kinds,
      uplinkBytes: BigInt(row.uplink),
      downlinkBytes: BigInt(row.downlink),
      allowanceBytes: row.total === null ? null : BigInt(row.total),
      expiresAt: row.expires_at,
    };
  }

  /**
   * One endpoint per profile the plan allows on every node it allows that
   * serves clients now: healthy, not drained, not retired, with the template
   * it has applied — not the one it was told, which during a rollout (or
   * after a rejection) it may not run yet. Nodes by name, profiles in their
   * template's order.
   */
  async endpoints(user: ProxyUser, plan: AccessTerms): Promise<Endpoint[]> {
    const nodes = await this.db
      .selectFrom('fleet_nodes')
      .select(['id', 'address', 'city', 'labels', 'applied_template'])
      .where('health', '=', 'healthy')
      .where('drained', '=', false)
      .where('retired', '=', false)
      .where('applied_template', 'is not', null)
      .orderBy('id')
      .execute();
    const templates = new Map<string, Promise<ClientProfile[] | null>>();
    const profilesOf = (template: string) => {
      let profiles = templates.get(template);
      if (!profiles) {
        profiles = this.configs.templateProfiles(template).then(
          (list) => list.map(clientProfile),
          (err: unknown) => {
            // One unreadable template must not take every other node out of everyone's subscription.
            this.log.warn({ err, template }, 'subscription: template unreadable, its nodes are left out');
            return null;
          },
        );
        templates.set(template, profiles);
      }
      return profiles;
    };
    const sources: EndpointSource[] = [];
    for (const node of nodes) {
      if (!nodeAllowed(plan, node.labels)) continue;
      const profiles = node.applied_template ? await profilesOf(node.applied_template) : null;
      for (const profile of profiles ?? []) if (accessOn(plan, node.labels, profile.kind)) sources.push({ node: { name: node.id, address: node.address, city: node.city }, profile });
    }
    return describeEndpoints(sources, user);
  }

  private mac(userId: string, generation: number): string {
    return createHmac('sha256', this.key).update(`${userId}:${generation}`).digest('base64url').slice(0, MAC_CHARS);
  }
}
