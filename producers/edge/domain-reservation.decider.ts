/**
 * Site names are unique across sites: one reservation subject per name
 * (`<ns>.evt.edge.domain.<sha256 hex of the name>`; a name's dots and `*`
 * cannot be subject tokens), under the rule of producers/reservation.ts. A
 * site's domain and its aliases share the one namespace: a name is the domain
 * of one site or an alias of one site, never both.
 */
import { createHash } from 'node:crypto';
import { DomainError } from '../decider.js';
import { reservationDecider } from '../reservation.js';

export type DomainReservationCommand =
  | { type: 'ReserveDomain'; domain: string; siteId: string; at: Date; takeOverFrom?: string | undefined }
  | { type: 'ReleaseDomain'; domain: string; siteId: string; at: Date };

/** The subject token of a name's reservation. */
export const domainKey = (domain: string): string => createHash('sha256').update(domain).digest('hex');

export const domainReservationDecider = reservationDecider<DomainReservationCommand, 'edge.DomainReserved' | 'edge.DomainReleased'>({
  ask: (command) => (command.type === 'ReleaseDomain' ? { release: true, owner: command.siteId } : { release: false, owner: command.siteId, takeOverFrom: command.takeOverFrom }),
  reserved: ({ domain, siteId, at }) => ({ type: 'edge.DomainReserved', data: { domain, siteId, reservedAt: at } }),
  released: ({ domain, siteId, at }) => ({ type: 'edge.DomainReleased', data: { domain, siteId, releasedAt: at } }),
  // The holder stays in the details for the takeover check (sites.ts); the answer to the client names no other site.
  taken: (state) => new DomainError('domain_taken', 'this name is already used by another site', { owner: state.owner, reservedAt: state.reservedAt }),
  after: (event) => (event.type === 'edge.DomainReleased' ? { owner: null, reservedAt: null } : { owner: event.data.siteId, reservedAt: event.data.reservedAt }),
});
