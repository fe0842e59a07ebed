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
    proxyUsername: `u${userId.replace(/-/g, '')}`,
    proxyPassword: randomBytes(24).toString('base64url'),
  };
}
