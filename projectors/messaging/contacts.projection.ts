/** `contacts` and `blocks`: the two one-way lists of each user, as the gateway checks them for presence and delivery. */
import type { Projection } from '../runtime/projection.js';
import { PairFold } from '../runtime/batch-fold.js';

export const contactsProjection: Projection = {
  name: 'contacts',
  context: 'messaging',
  tables: ['contacts', 'blocks'],
  filter: (names) => names.aggregateSubjects('messaging', 'contacts'),
  async apply(trx, events) {
    const contacts = new PairFold('contacts', ['user_id', 'contact_id', 'added_at']);
    const blocks = new PairFold('blocks', ['user_id', 'blocked_id', 'blocked_at']);
    for (const event of events) {
      switch (event.type) {
        case 'messaging.ContactAdded':
          contacts.set(event.data.userId, event.data.contactId, event.data.addedAt);
          break;
        case 'messaging.ContactRemoved':
          contacts.unset(event.data.userId, event.data.contactId);
          break;
        case 'messaging.UserBlocked':
          blocks.set(event.data.userId, event.data.blockedId, event.data.blockedAt);
          break;
        case 'messaging.UserUnblocked':
          blocks.unset(event.data.userId, event.data.blockedId);
          break;
        default:
          break;
      }
    }
    await contacts.write(trx);
    await blocks.write(trx);
  },
};
