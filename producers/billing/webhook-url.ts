/**
 * Where webhooks may go. http(s) only, no credentials in the URL, and — unless
 * RG_WEBHOOK_ALLOW_PRIVATE=1 — no private target: loopback, RFC 1918,
 * carrier-grade NAT, link-local (cloud metadata at 169.254.169.254), unique
 * local and multicast addresses, `localhost`. Otherwise an admin (or a stolen
 * admin token) could make the worker POST into the installation's own network
 * (SSRF).
 *
 * Checked twice: when the endpoint is created (literal addresses and
 * `localhost`, no DNS: a name may not resolve yet, and tests must not look up
 * names beyond the machine), and at every connection, on the address actually
 * connected to (`guardedLookup`), so a name that resolves — or is re-pointed
 * (DNS rebinding) — to a private address is refused then.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { DomainError } from '../decider.js';

export interface TargetPolicy {
  /** RG_WEBHOOK_ALLOW_PRIVATE: private and loopback targets allowed (tests, a receiver on the same network). */
  allowPrivate: boolean;
}

const MAX_URL_LENGTH = 2048;

// One list per family: a BlockList holding ::ffff:0:0/96 matches every IPv4 address checked against it.
const PRIVATE_V4 = new BlockList();
const PRIVATE_V6 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE_V4.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 127], // :: and ::1
  ['::ffff:0:0', 96], // IPv4-mapped: whatever the v4 address, refused rather than decoded
  ['64:ff9b::', 96], // NAT64 (may map to a private v4 address)
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE_V6.addSubnet(net, prefix, 'ipv6');
}

/** Whether an IP address (v4 or v6, no brackets) is one a webhook must not reach by default. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return family === 4 ? PRIVATE_V4.check(address, 'ipv4') : PRIVATE_V6.check(address, 'ipv6');
}

const notAllowed = (what: string) =>
  new DomainError('webhook_target_not_allowed', `url: ${what} is a private or loopback target; webhooks go to public addresses (RG_WEBHOOK_ALLOW_PRIVATE=1 allows others)`, { field: 'url' });

/** The URL as it will be stored and POSTed to, or 400 invalid_webhook_url / webhook_target_not_allowed. */
export function checkWebhookUrl(raw: unknown, policy: TargetPolicy): string {
  const invalid = (why: string) => new DomainError('invalid_webhook_url', `url: ${why}`, { field: 'url' });
  if (typeof raw !== 'string' || raw.length === 0 || raw.length > MAX_URL_LENGTH) throw invalid(`must be an http or https URL of at most ${MAX_URL_LENGTH} characters`);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid('is not a URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid('only http and https are delivered to');
  if (url.username || url.password) throw invalid('must not carry credentials');
  if (url.hash) throw invalid('must not have a fragment');
  if (!policy.allowPrivate) {
    const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
    if (host === 'localhost' || host.endsWith('.localhost') || isPrivateAddress(host)) throw notAllowed(url.hostname);
  }
  return url.href;
}

/** An error a connection refused by the policy fails with. */
export class TargetNotAllowedError extends Error {
  readonly code = 'target_not_allowed';
}

/**
 * `lookup` for http.request: resolves like the system does, and fails the
 * connection when any address of the name is private (all of them, not just
 * the first: a name with one public and one private address could be made to
 * reach the private one on a retry).
 */
export function guardedLookup(policy: TargetPolicy): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 0);
      const refused = policy.allowPrivate ? undefined : addresses.find((a) => isPrivateAddress(a.address));
      if (refused) return callback(new TargetNotAllowedError(`${hostname} resolves to ${refused.address}, a private address`), '', 0);
      if (options.all) return (callback as unknown as (err: null, addresses: LookupAddress[]) => void)(null, addresses);
      const first = addresses[0];
      if (!first) return callback(new Error(`${hostname} has no address`), '', 0);
      callback(null, first.address, first.family);
    });
  };
}
