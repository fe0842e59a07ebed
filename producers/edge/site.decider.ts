/**
 * An edge site (`<ns>.evt.edge.site.<siteId>`): created with its owner and
 * settings, its settings replaced whole, blocked and unblocked, deleted.
 * Input arrives validated (site-validation.ts) and its names reserved
 * (sites.ts); the decider owns existence, ownership and change. Who may act
 * travels with each command, so a client's change of another's site is
 * refused from the log itself, never from a read model that may lag.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import { sameSettings, settingsData, settingsOf, type SiteSettings } from './site-settings.js';

export type SiteEventKey = 'edge.SiteCreated' | 'edge.SiteUpdated' | 'edge.SiteBlocked' | 'edge.SiteUnblocked' | 'edge.SiteDeleted' | 'edge.SiteCachePurged';

export interface SiteState {
  siteId: string | null;
  ownerId: string | null;
  settings: SiteSettings | null;
  blocked: boolean;
  deleted: boolean;
}

/** Who asks: a client acts on its own sites only; admins and operators (`all`) on every site. */
export interface Requester {
  userId: string;
  all: boolean;
}

type Acting = { requester: Requester; by: string; at: Date };

export type SiteCommand =
  | ({ type: 'Create'; siteId: string; settings: SiteSettings } & Acting)
  | ({ type: 'Update'; settings: SiteSettings } & Acting)
  | ({ type: 'Block' } & Acting)
  | ({ type: 'Unblock' } & Acting)
  | ({ type: 'Delete' } & Acting)
  /** Empties the site's cache on every node serving it: these exact URIs, or (none) everything. */
  | ({ type: 'Purge'; paths: string[] } & Acting);

type E = DomainEvent<SiteEventKey>;

/** Another's site answers like one that never was: its id is not a door to anything. */
export function mayManage(state: SiteState, requester: Requester): boolean {
  return state.siteId !== null && !state.deleted && (requester.all || state.ownerId === requester.userId);
}

function decide(command: SiteCommand, state: SiteState): E[] {
  const { by, at } = command;
  if (command.type === 'Create') {
    if (state.siteId) throw new DomainError('site_exists', `site ${command.siteId} already exists`);
    return [{ type: 'edge.SiteCreated', data: { siteId: command.siteId, ownerId: command.requester.userId, ...settingsData(command.settings), by, createdAt: at } }];
  }
  const siteId = state.siteId;
  if (!siteId || !mayManage(state, command.requester)) throw new DomainError('site_not_found', 'no such site');
  switch (command.type) {
    case 'Update':
      if (state.settings && sameSettings(state.settings, command.settings)) return [];
      return [{ type: 'edge.SiteUpdated', data: { siteId, ...settingsData(command.settings), by, updatedAt: at } }];
    case 'Block':
      return state.blocked ? [] : [{ type: 'edge.SiteBlocked', data: { siteId, by, blockedAt: at } }];
    case 'Unblock':
      return state.blocked ? [{ type: 'edge.SiteUnblocked', data: { siteId, by, unblockedAt: at } }] : [];
    case 'Delete':
      return [{ type: 'edge.SiteDeleted', data: { siteId, by, deletedAt: at } }];
    case 'Purge':
      // Recorded whether or not the cache is on: a purge is cheap, and an answer that depends on a setting another request may be changing would race it.
      return [{ type: 'edge.SiteCachePurged', data: { siteId, paths: command.paths, by, purgedAt: at } }];
  }
}

function evolve(state: SiteState, event: E): SiteState {
  switch (event.type) {
    case 'edge.SiteCreated':
      return { siteId: event.data.siteId, ownerId: event.data.ownerId, settings: settingsOf(event.data), blocked: false, deleted: false };
    case 'edge.SiteUpdated':
      return { ...state, settings: settingsOf(event.data) };
    case 'edge.SiteBlocked':
      return { ...state, blocked: true };
    case 'edge.SiteUnblocked':
      return { ...state, blocked: false };
    case 'edge.SiteDeleted':
      return { ...state, deleted: true };
    case 'edge.SiteCachePurged':
      return state;
  }
}

export const siteDecider: Decider<SiteState, SiteCommand, SiteEventKey> = {
  initialState: { siteId: null, ownerId: null, settings: null, blocked: false, deleted: false },
  decide,
  evolve,
};
