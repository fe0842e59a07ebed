/** The credentials a user's proxy clients present to nodes: one set per user, rotated as a whole. */
import { randomBytes, randomUUID } from 'node:crypto';

export interface ProxyCredentials {
  /** VLESS user id (a UUID, as Xray expects). */
  vlessId: string;
  trojanPassword: string;
  /** HTTP and SOCKS5 username: stable per user, so rotation changes only secrets. */
  proxyUsername: string;
  proxyPassword: string;
}

export function newProxyCredentials(userId: string): ProxyCredentials {
  return {
    vlessId: randomUUID(),
    trojanPassword: randomBytes(24).toString('base64url'),
    proxyUsername: proxyUsernameOf(userId),
    proxyPassword: randomBytes(24).toString('base64url'),
  };
}

/** HTTP and SOCKS5 username of a user: derived from the id, so nodes can remove a forgotten user's account too. */
export function proxyUsernameOf(userId: string): string {
  return `u${userId.replace(/-/g, '')}`;
}
