/**
 * The names a site answers to (its domain and aliases), reserved in the log
 * before the site records them and released after it stops using them, so two
 * sites never hold one name (domain-reservation.decider.ts). Names are claimed
 * in sorted order: two creates contesting several names meet first on the
 * same one, and exactly one of them gets them all.
 *
 * A claim outlives its reason when a process stops between the reservation
 * and the site's event (or between a deletion and the release). Such a claim
 * moves to the next site that asks: at once when its holder is deleted, after
 * NAME_TAKEOVER_GRACE_MS when its holder does not list the name (it may be
 * between reserving and recording it), never while its holder lists it.
 */
import { DomainError } from '../decider.js';
import type { ContextDeps } from '../context-deps.js';
import type { Actor } from '../identity/identity-deps.js';
import { claimOrTakeOver } from '../reservation.js';
import { domainKey, domainReservationDecider } from './domain-reservation.decider.js';
import { siteDecider } from './site.decider.js';
import { siteNames } from './site-settings.js';

export type EdgeAggregate = 'site' | 'domain' | 'certificate';

export const NAME_TAKEOVER_GRACE_MS = 30_000;

/** A name to claim, and the field it came from (for the client's 409). */
export interface NameClaim {
  name: string;
  field: string;
}

export class SiteNames {
  constructor(private readonly deps: ContextDeps<EdgeAggregate>) {}

  /** Claims every name for `siteId`, or none: on a refusal the names claimed so far are released, and 409 domain_taken names the field. */
  async reserve(siteId: string, claims: NameClaim[], actor: Actor, now: Date): Promise<void> {
    const held: string[] = [];
    for (const { name, field } of [...claims].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      try {
        await claimOrTakeOver(
          (takeOverFrom) => this.deps.decide(domainReservationDecider, 'domain', domainKey(name), { type: 'ReserveDomain', domain: name, siteId, at: now, takeOverFrom }, actor),
          'domain_taken',
          (holder, taken) => this.holderGaveUp(holder, name, taken, now),
        );
        held.push(name);
      } catch (err) {
        await this.release(siteId, held, actor, now);
        if (err instanceof DomainError && err.code === 'domain_taken') throw new DomainError('domain_taken', `${field}: "${name}" is already used by another site`, { field });
        throw err;
      }
    }
  }

  /** Gives the names up; a name `siteId` does not hold is left alone. */
  async release(siteId: string, names: string[], actor: Actor, now: Date): Promise<void> {
    for (const name of names) await this.deps.decide(domainReservationDecider, 'domain', domainKey(name), { type: 'ReleaseDomain', domain: name, siteId, at: now }, actor);
  }

  private async holderGaveUp(holder: string, name: string, taken: DomainError, now: Date): Promise<boolean> {
    const { state } = await this.deps.load(siteDecider, 'site', holder);
    if (state.deleted) return true;
    if (state.settings && siteNames(state.settings).includes(name)) return false;
    const reservedAt = taken.details['reservedAt'];
    return reservedAt instanceof Date && now.getTime() - reservedAt.getTime() >= NAME_TAKEOVER_GRACE_MS;
  }
}

/** The claims of a site's names: the domain, then each alias by its index. */
export function nameClaims(settings: { domain: string; aliases: string[] }): NameClaim[] {
  return [{ name: settings.domain, field: 'domain' }, ...settings.aliases.map((name, i) => ({ name, field: `aliases[${i}]` }))];
}
