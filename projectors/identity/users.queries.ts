/** Reading the `users` read model the way staff look for people: by email prefix and status, a page at a time. */
import type { Kysely } from 'kysely';
import type { Database, UserStatus, UserTable } from '../../schema/database.js';

export const USER_STATUSES: readonly UserStatus[] = ['active', 'suspended', 'forgotten'];

export interface UserQuery {
  /** Matches the start of the (lower-cased) email; LIKE wildcards in it are literal. */
  q?: string | undefined;
  status?: UserStatus | undefined;
  limit: number;
  /** The last id of the previous page. */
  after?: string | undefined;
}

export function listUsers(db: Kysely<Database>, { q, status, limit, after }: UserQuery): Promise<UserTable[]> {
  let query = db.selectFrom('users').selectAll().orderBy('id').limit(limit);
  if (q) query = query.where('email', 'like', `${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  if (status) query = query.where('status', '=', status);
  if (after) query = query.where('id', '>', after);
  return query.execute();
}
