/**
 * Users on inbounds, both ways: ProxyUser credentials into an inbound's
 * clients/accounts, and an inbound's clients/accounts back into the CoreUser
 * values the agent hands to the core's HandlerService when it changes users
 * without a restart.
 */
import type { InboundProfile, ProxyUser } from '../../../producers/fleet/model.js';
import type { CoreUser } from '../../agent/core/driver.js';
import type { CoreInbound, ProxyAccount } from './core-config.js';

/** Every user is rendered at level 0: the agent's policy counts traffic per user at that level. */
export const USER_LEVEL = 0;

/** VLESS flow for a profile: only kinds with transport security can carry XTLS Vision. */
function vlessFlow(profile: InboundProfile): string | undefined {
  if (profile.kind !== 'vless-reality' && profile.kind !== 'vless-tls') return undefined;
  return profile.settings.flow ? profile.settings.flow : undefined;
}

/** A copy of `inbound` with `users` (already sorted) as its clients or accounts. */
export function withUsers(inbound: CoreInbound, profile: InboundProfile, users: readonly ProxyUser[]): CoreInbound {
  switch (inbound.protocol) {
    case 'vless': {
      const flow = vlessFlow(profile);
      const clients = users.map((u) => ({ id: u.vlessId, email: u.userId, level: USER_LEVEL, ...(flow ? { flow } : {}) }));
      return { ...inbound, settings: { ...inbound.settings, clients } };
    }
    case 'trojan': {
      const clients = users.map((u) => ({ password: u.trojanPassword, email: u.userId, level: USER_LEVEL }));
      return { ...inbound, settings: { ...inbound.settings, clients } };
    }
    case 'http':
      return { ...inbound, settings: { ...inbound.settings, accounts: proxyAccounts(users) } };
    case 'socks':
      return { ...inbound, settings: { ...inbound.settings, accounts: proxyAccounts(users) } };
  }
}

function proxyAccounts(users: readonly ProxyUser[]): ProxyAccount[] {
  return users.map((u) => ({ user: u.proxyUsername, pass: u.proxyPassword }));
}

/** The same inbound with no clients or accounts: what is left when only users are ignored. */
export function withoutUsers(inbound: CoreInbound): CoreInbound {
  switch (inbound.protocol) {
    case 'vless':
      return { ...inbound, settings: { ...inbound.settings, clients: [] } };
    case 'trojan':
      return { ...inbound, settings: { ...inbound.settings, clients: [] } };
    case 'http':
      return { ...inbound, settings: { ...inbound.settings, accounts: [] } };
    case 'socks':
      return { ...inbound, settings: { ...inbound.settings, accounts: [] } };
  }
}

/**
 * The inbound's users keyed as the core identifies them on removal: by email
 * on VLESS and Trojan (the user id). HTTP and SOCKS accounts carry no email in
 * the configuration, so they are keyed by username and the username doubles as
 * `email` in the CoreUser (the agent must add them under that email to be able
 * to remove them again).
 */
export function inboundUsers(inbound: CoreInbound): Map<string, CoreUser> {
  const users = new Map<string, CoreUser>();
  switch (inbound.protocol) {
    case 'vless':
      for (const c of inbound.settings.clients) {
        const account = c.flow ? { protocol: 'vless' as const, id: c.id, flow: c.flow } : { protocol: 'vless' as const, id: c.id };
        users.set(c.email, { email: c.email, level: c.level, account });
      }
      break;
    case 'trojan':
      for (const c of inbound.settings.clients) {
        users.set(c.email, { email: c.email, level: c.level, account: { protocol: 'trojan', password: c.password } });
      }
      break;
    case 'http':
    case 'socks':
      for (const a of inbound.settings.accounts) {
        users.set(a.user, { email: a.user, level: USER_LEVEL, account: { protocol: inbound.protocol, username: a.user, password: a.pass } });
      }
      break;
  }
  return users;
}
