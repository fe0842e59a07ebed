/**
 * A user's contacts and blocks (`<ns>.evt.messaging.contacts.<userId>`): both
 * one-way lists the user keeps about others, in one aggregate because they are
 * decided on the same occasions and read together by the gateway. Adding or
 * blocking what is already there is a no-op, so retries are harmless.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import { MAX_CONTACTS } from './limits.js';

export type ContactsEventKey = 'messaging.ContactAdded' | 'messaging.ContactRemoved' | 'messaging.UserBlocked' | 'messaging.UserUnblocked';

export interface ContactsState {
  contacts: readonly string[];
  blocked: readonly string[];
}

export type ContactsCommand =
  | { type: 'AddContact' | 'RemoveContact' | 'Block' | 'Unblock'; userId: string; otherId: string; at: Date };

type E = DomainEvent<ContactsEventKey>;

function decide(command: ContactsCommand, state: ContactsState): E[] {
  const { userId, otherId, at } = command;
  if (userId === otherId) throw new DomainError('cannot_target_self', 'userId: you cannot add or block yourself');
  switch (command.type) {
    case 'AddContact':
      if (state.contacts.includes(otherId)) return [];
      if (state.contacts.length >= MAX_CONTACTS) throw new DomainError('contact_limit_reached', `at most ${MAX_CONTACTS} contacts`);
      return [{ type: 'messaging.ContactAdded', data: { userId, contactId: otherId, addedAt: at } }];
    case 'RemoveContact':
      return state.contacts.includes(otherId) ? [{ type: 'messaging.ContactRemoved', data: { userId, contactId: otherId, removedAt: at } }] : [];
    case 'Block':
      if (state.blocked.includes(otherId)) return [];
      if (state.blocked.length >= MAX_CONTACTS) throw new DomainError('block_limit_reached', `at most ${MAX_CONTACTS} blocked users`);
      return [{ type: 'messaging.UserBlocked', data: { userId, blockedId: otherId, blockedAt: at } }];
    case 'Unblock':
      return state.blocked.includes(otherId) ? [{ type: 'messaging.UserUnblocked', data: { userId, blockedId: otherId, unblockedAt: at } }] : [];
  }
}

function evolve(state: ContactsState, event: E): ContactsState {
  switch (event.type) {
    case 'messaging.ContactAdded':
      return { ...state, contacts: [...state.contacts, event.data.contactId] };
    case 'messaging.ContactRemoved':
      return { ...state, contacts: state.contacts.filter((id) => id !== event.data.contactId) };
    case 'messaging.UserBlocked':
      return { ...state, blocked: [...state.blocked, event.data.blockedId] };
    case 'messaging.UserUnblocked':
      return { ...state, blocked: state.blocked.filter((id) => id !== event.data.blockedId) };
  }
}

export const contactsDecider: Decider<ContactsState, ContactsCommand, ContactsEventKey> = {
  initialState: { contacts: [], blocked: [] },
  decide,
  evolve,
};
