/**
 * An edge node's desired state and its version. The version is a
 * fingerprint of which sites the node serves at which versions, not an
 * ordering: a maximum of site versions would not move when a site that is
 * not the newest leaves the node (its labels changed, so its higher version
 * no longer counts for this node), and the node would keep serving it.
 * Equal fingerprints mean the same sites at the same versions; the agent
 * compares them for equality only.
 */
import { createHash } from 'node:crypto';
import type { CertificateRef, EdgeDesired, SiteSpec } from './model.js';

/** 48 bits: an exact JavaScript integer, and the odds that two different site sets collide are negligible. */
const FINGERPRINT_HEX_DIGITS = 12;

/** The fingerprint covers each ACME site's certificate serial too: a renewal is a new version, which the node applies. */
export function edgeDesired(sites: SiteSpec[], certificates: CertificateRef[] = []): EdgeDesired {
  const hash = createHash('sha256');
  const serials = new Map(certificates.map((c) => [c.siteId, c.serial]));
  const key = (site: SiteSpec) => `${site.siteId}:${site.version}${serials.has(site.siteId) ? `:${serials.get(site.siteId)}` : ''}`;
  for (const k of sites.map(key).sort()) hash.update(`${k}\n`);
  const version = Number.parseInt(hash.digest('hex').slice(0, FINGERPRINT_HEX_DIGITS), 16);
  return certificates.length > 0 ? { version, sites, certificates } : { version, sites };
}
