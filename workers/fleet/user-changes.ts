/**
 * A batch of user changes as one node's inbounds take them: the CoreUser each
 * user on the node becomes on each inbound their plan allows (the same
 * rendering as a full configuration, so the pushed user and the next
 * version's user are identical), and the (tag, email) pairs to remove: every
 * user of the batch from every inbound they are not rendered on (gone from
 * the node, or from that inbound's kind). HTTP and SOCKS accounts are keyed
 * by username, the others by user id.
 */
import type { InboundProfile, ProxyUser } from '../../producers/fleet/model.js';
import type { CoreUser } from '../agent/core/driver.js';
import { inboundKind } from './render/inbounds.js';
import { renderConfig, renderTemplate, usersByInbound } from './render/render.js';

export interface UserChanges {
  add: { tag: string; user: CoreUser }[];
  remove: { tag: string; email: string }[];
}

/** `onNode`: the users of the batch that belong on this node; `batch`: every user of the batch. */
export function userChanges(profiles: readonly InboundProfile[], onNode: readonly ProxyUser[], batch: readonly { userId: string; proxyUsername: string }[]): UserChanges {
  const template = renderTemplate(profiles);
  const rendered = usersByInbound(renderConfig(template, profiles, onNode));
  const add: UserChanges['add'] = [];
  const remove: UserChanges['remove'] = [];
  // Over the template's inbounds, not the rendering's: an HTTP inbound left with nobody is not rendered, yet its accounts must go.
  for (const inbound of template.inbounds) {
    const users = rendered.get(inbound.tag)?.users ?? new Map<string, CoreUser>();
    for (const user of users.values()) add.push({ tag: inbound.tag, user });
    const kind = inboundKind(inbound);
    const byUsername = kind === 'http' || kind === 'socks';
    for (const r of batch) {
      const email = byUsername ? r.proxyUsername : r.userId;
      if (!users.has(email)) remove.push({ tag: inbound.tag, email });
    }
  }
  return { add, remove };
}
