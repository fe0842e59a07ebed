/**
 * Renders a node's core configuration in two steps: `renderTemplate` from the
 * profiles assigned to the node (inbounds, no users), then `renderConfig`
 * with every user. The agent compares `inboundsSignature` of two versions to
 * choose between a restart (inbounds changed) and gRPC user changes
 * (`usersByInbound` diff), and `contentHash` to know whether anything changed.
 *
 * Output is deterministic: inbounds sorted by profile id, users by user id,
 * and hashes taken over canonical JSON, so input order never shows.
 */
import type { InboundProfile, ProfileKind, ProxyUser } from '../../../producers/fleet/model.js';
import type { CoreUser } from '../../agent/core/driver.js';
import { canonicalHash } from './canonical-json.js';
import type { CoreConfig, CoreOutbound } from './core-config.js';
import { inboundKind, RenderError, templateInbound } from './inbounds.js';
import { inboundUsers, withoutUsers, withUsers } from './users.js';
import { kindAllowed } from '../../../producers/plans/access.js';

export { RenderError } from './inbounds.js';

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function outbounds(): CoreOutbound[] {
  // The first outbound is the default route: proxied traffic leaves directly.
  return [
    { tag: 'direct', protocol: 'freedom', settings: {} },
    { tag: 'block', protocol: 'blackhole', settings: {} },
  ];
}

/**
 * The configuration for the profiles of one node, with empty client and
 * account lists. It is an input to renderConfig, not something to run: its
 * HTTP inbounds would accept anybody. No routing rules: the agent adds its API rule, and private
 * destinations are deliberately not blocked (tests proxy to 127.0.0.1).
 */
export function renderTemplate(profiles: readonly InboundProfile[]): CoreConfig {
  const sorted = [...profiles].sort((a, b) => byString(a.profileId, b.profileId));
  for (let i = 1; i < sorted.length; i++) {
    // Checked here because the core's error ("existing tag found") would name neither profile's owner.
    if (sorted[i]!.profileId === sorted[i - 1]!.profileId) throw new RenderError(sorted[i]!.profileId, 'listed twice');
  }
  return {
    log: { loglevel: 'warning' },
    inbounds: sorted.map(templateInbound),
    outbounds: outbounds(),
    routing: { domainStrategy: 'AsIs', rules: [] },
  };
}

/**
 * The template with every user on every inbound their plan allows (ProxyUser
 * `inboundKinds`; which users belong on the node at all is the caller's
 * choice, see ConfigStore). `profiles` supplies what is
 * per client but comes from the profile (the VLESS flow); each inbound of the
 * template must have its profile here. The template is not modified.
 *
 * With no users on it, an HTTP inbound is left out rather than rendered
 * without accounts (see below); the signature then changes when the first
 * user arrives, so the agent restarts instead of adding that user by gRPC.
 */
export function renderConfig(template: CoreConfig, profiles: readonly InboundProfile[], users: readonly ProxyUser[]): CoreConfig {
  const profileById = new Map(profiles.map((p) => [p.profileId, p]));
  const sortedUsers = [...users].sort((a, b) => byString(a.userId, b.userId));
  for (let i = 1; i < sortedUsers.length; i++) {
    // Emails must be unique per inbound, or the core refuses the whole configuration.
    if (sortedUsers[i]!.userId === sortedUsers[i - 1]!.userId) throw new Error(`user ${sortedUsers[i]!.userId} listed twice`);
  }
  const inbounds = template.inbounds.flatMap((inbound) => {
    const profile = profileById.get(inbound.tag);
    if (!profile) throw new RenderError(inbound.tag, 'in the template but not among the profiles given');
    // A plan may limit its users to some inbound kinds: each inbound gets only the users allowed on its kind.
    const allowed = sortedUsers.filter((u) => kindAllowed({ inboundKinds: u.inboundKinds ?? [] }, profile.kind));
    // An HTTP inbound without accounts asks for no authentication at all: an open proxy
    // (Xray and V2Ray docs: Basic auth only "when accounts is not empty"; seen with
    // V2Ray 4.34). SOCKS with auth "password" and no accounts refuses everybody, so it stays.
    if (inbound.protocol === 'http' && allowed.length === 0) return [];
    return [withUsers(inbound, profile, allowed)];
  });
  return structuredClone({ ...template, inbounds });
}

/** `sha256-<hex>` of the configuration's canonical JSON: equal configurations hash equal whatever their key order. */
export function contentHash(config: CoreConfig): string {
  return canonicalHash(config);
}

/** A hash of the configuration with every client and account removed: it changes only when a restart is needed. */
export function inboundsSignature(config: CoreConfig): string {
  return canonicalHash({ ...config, inbounds: config.inbounds.map(withoutUsers) });
}

export interface InboundUsers {
  kind: ProfileKind;
  /** Keyed by email (VLESS, Trojan) or username (HTTP, SOCKS). */
  users: Map<string, CoreUser>;
}

/** Every inbound's users by inbound tag, in the form the agent passes to CoreDriver.addUser/removeUser. */
export function usersByInbound(config: CoreConfig): Map<string, InboundUsers> {
  return new Map(config.inbounds.map((inbound) => [inbound.tag, { kind: inboundKind(inbound), users: inboundUsers(inbound) }]));
}
