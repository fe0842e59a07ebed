/** Contacts and blocks: who a user keeps in their address book, and whom they refuse to hear from. */
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import { contactsDecider, type ContactsCommand } from './contacts.decider.js';
import type { MessagingDeps, Written } from './messaging-deps.js';

export type DirectoryChange = ContactsCommand['type'];

export class Directory {
  constructor(private readonly d: MessagingDeps) {}

  /**
   * One change to the caller's lists. Only adding and blocking need the other
   * account to exist; removing and unblocking someone who has since been
   * forgotten must still work.
   */
  async change(type: DirectoryChange, userId: string, otherId: string, actor: Actor, now = new Date()): Promise<Written> {
    if ((type === 'AddContact' || type === 'Block') && userId !== otherId && !(await this.d.liveUsers([otherId])).has(otherId)) {
      throw new DomainError('user_not_found', `no user ${otherId}`);
    }
    return this.d.decide(contactsDecider, 'contacts', userId, { type, userId, otherId, at: now }, actor);
  }

  contacts(userId: string) {
    return this.d.db.selectFrom('contacts').select(['contact_id', 'added_at']).where('user_id', '=', userId).orderBy('added_at').execute();
  }

  blocks(userId: string) {
    return this.d.db.selectFrom('blocks').select(['blocked_id', 'blocked_at']).where('user_id', '=', userId).orderBy('blocked_at').execute();
  }
}
