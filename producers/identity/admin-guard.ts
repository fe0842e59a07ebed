/**
 * The installation always keeps an active admin. Every change that can take
 * the role away from someone (suspending, revoking `admin`, forgetting) runs
 * one at a time under a Postgres advisory lock of the namespace, and counts
 * the other active admins from the log before the user decider judges it
 * (`last_admin`, see user.decider.ts). Two admins demoting each other at once
 * are thereby serialised: the second counts after the first's event is
 * appended, so it sees no other admin and is refused.
 *
 * The candidates come from the `users` read model and each is checked against
 * its own aggregate, so a lagging read model can only make the count smaller:
 * right after an admin was made, removing the previous one may be refused
 * until the new admin is projected, never the other way round. Changes that
 * add admins (grants, reinstatements, registrations) take no lock: they
 * cannot empty the set.
 */
import { sql } from 'kysely';
import type { IdentityDeps } from './identity-deps.js';
import type { UserState } from './user.decider.js';

const isActiveAdmin = (state: UserState) => state.userId !== null && state.status === 'active' && state.roles.includes('admin');

/**
 * Runs `decide` with the number of active admins besides `userId` when
 * `userId` is one (undefined otherwise), holding the admin lock until it is done.
 */
export function keepingAnAdmin<T>(d: IdentityDeps, userId: string, decide: (otherActiveAdmins: number | undefined) => Promise<T>): Promise<T> {
  const lock = `relaygrid:${d.handler.store.names.namespace}:admins`;
  // A transaction-scoped lock: released by commit, by rollback, and by a dropped connection of a killed process.
  return d.db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${lock}))`.execute(trx);
    if (!isActiveAdmin(await d.loadUser(userId))) return decide(undefined);
    const candidates = await d.db
      .selectFrom('users')
      .select('id')
      .where('id', '<>', userId)
      .where('status', '<>', 'forgotten')
      .where(sql<boolean>`roles @> array['admin']::text[]`)
      .execute();
    let others = 0;
    for (const { id } of candidates) if (isActiveAdmin(await d.loadUser(id))) others++;
    return decide(others);
  });
}
