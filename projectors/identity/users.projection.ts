/** The `users` read model: one row per registered user. */
import type { StoredEvent } from '../../contracts/envelope.js';
import type { UserTable } from '../../schema/database.js';
import type { Projection } from '../runtime/projection.js';
import { upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';

/** Columns of the `users` upsert (also the raw baseline of bench/project.ts). */
export const USER_COLUMNS: UnnestColumn<UserTable>[] = [
  { name: 'id', arrayType: 'text[]', value: (r) => r.id },
  { name: 'email', arrayType: 'text[]', value: (r) => r.email },
  { name: 'display_name', arrayType: 'text[]', value: (r) => r.display_name },
  { name: 'status', arrayType: 'text[]', value: (r) => r.status },
  { name: 'registered_at', arrayType: 'timestamptz[]', value: (r) => r.registered_at },
  { name: 'last_seq', arrayType: 'bigint[]', value: (r) => r.last_seq },
];

/** Folds a batch into the final row of each user it touches. */
export function foldUsers(events: readonly StoredEvent[]): Map<string, UserTable> {
  const rows = new Map<string, UserTable>();
  for (const event of events) {
    switch (event.type) {
      case 'identity.UserRegistered':
        rows.set(event.data.userId, {
          id: event.data.userId,
          email: event.data.email,
          display_name: event.data.displayName,
          status: 'active',
          registered_at: event.data.registeredAt,
          last_seq: event.seq,
        });
        break;
      default:
        break;
    }
  }
  return rows;
}

export const usersProjection: Projection = {
  name: 'users',
  context: 'identity',
  filter: (names) => names.aggregateSubjects('identity', 'user'),
  async apply(trx, events) {
    await upsertUnnest(trx, 'users', USER_COLUMNS, [...foldUsers(events).values()], ['id']);
  },
};
