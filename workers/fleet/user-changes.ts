/**
 * A batch of user changes as one node template's inbounds take them: the
 * CoreUser each added user becomes on each inbound (the same rendering as a
 * full configuration, so the pushed user and the next version's user are
 * identical), and the (tag, email) pairs to remove. HTTP and SOCKS accounts
 * are keyed by username, the others by user id.
 */
import type { InboundProfile, ProxyUser } from '../../producers/fleet/model.js';
import type { CoreUser } from '../agent/core/driver.js';
import { renderConfig, renderTemplate, usersByInbound } from './render/render.js';

export interface UserChanges {
  add: { tag: string; user: CoreUser }[];
  remove: { tag: string; email: string }[];
}

export function userChanges(profiles: readonly InboundProfile[], added: readonly ProxyUser[], removed: readonly { userId: string; proxyUsername: string }[]): UserChanges {
  const config = renderConfig(renderTemplate(profiles), profiles, added);
  const add: UserChanges['add'] = [];
  const remove: UserChanges['remove'] = [];
  for (const [tag, inbound] of usersByInbound(config)) {
    for (const user of inbound.users.values()) add.push({ tag, user });
    const byUsername = inbound.kind === 'http' || inbound.kind === 'socks';
    for (const r of removed) remove.push({ tag, email: byUsername ? r.proxyUsername : r.userId });
  }
  return { add, remove };
}
