/**
 * Subscription bodies and the usage header clients show. Every format is
 * built from the same Endpoint list (endpoint.ts), so they cannot disagree.
 */
import { shareLinks } from './share-links.js';
import type { Endpoint } from './endpoint.js';

export { clashSubscription, clashProfile, type ClashProfile, type ClashProxy } from './clash.js';
export { singboxSubscription, type SingboxOutbound, type SingboxSubscription } from './singbox.js';

/** The v2rayN-style body: share links one per line, the whole in standard base64. */
export function base64Subscription(links: readonly string[]): string {
  return Buffer.from(links.join('\n'), 'utf8').toString('base64');
}

/** base64Subscription of the endpoints that have share links (HTTP and SOCKS do not). */
export function base64SubscriptionOf(endpoints: readonly Endpoint[]): string {
  return base64Subscription(shareLinks(endpoints));
}

export interface SubscriptionUsage {
  upload: number | bigint;
  download: number | bigint;
  /** Bytes allowed in all; 0 or omitted means unlimited. */
  total?: number | bigint;
  /** When the subscription ends: a Date or unix seconds; null or omitted means never. */
  expire?: Date | number | null;
}

function count(field: string, value: number | bigint): string {
  if (typeof value === 'bigint') {
    if (value < 0n) throw new RangeError(`${field} must not be negative`);
    return value.toString();
  }
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${field} must be a non-negative integer`);
  return String(value);
}

/**
 * The `Subscription-Userinfo` header value: `upload=..; download=..; total=..; expire=..`,
 * bytes and unix seconds. The de-facto convention (Clash for Windows, mihomo
 * clients, v2rayN, Marzban/PasarGuard panels): every key present, `total=0`
 * for no limit and `expire=0` for no end.
 */
export function subscriptionUserinfo(usage: SubscriptionUsage): string {
  const expire = usage.expire instanceof Date ? Math.floor(usage.expire.getTime() / 1000) : (usage.expire ?? 0);
  return [
    `upload=${count('upload', usage.upload)}`,
    `download=${count('download', usage.download)}`,
    `total=${count('total', usage.total ?? 0)}`,
    `expire=${count('expire', expire)}`,
  ].join('; ');
}
