/**
 * The `users` read model: one row per account, with personal data opened from
 * the sealed fields of its events. A forgotten person's key is gone, so their
 * row keeps no email or name, and a rebuild from the log cannot bring them
 * back. Applying UserForgotten also destroys the key in the same transaction,
 * so a forget that crashed right after its append still completes here.
 */
import type { StoredEvent } from '../../contracts/envelope.js';
import { openText } from '../../producers/identity/crypto/person-keys.js';
import { isRole } from '../../producers/identity/roles.js';
import type { UserTable } from '../../schema/database.js';
import { asVisibility, DEFAULT_VISIBILITY } from '../../producers/identity/privacy.js';
import { DEFAULT_TIME_ZONE } from '../../producers/identity/user.decider.js';
import type { Projection } from '../runtime/projection.js';
import { tokenArrayColumn, upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';

/** Columns of the `users` upsert (also the raw baseline of bench/project.ts). */
export const USER_COLUMNS: UnnestColumn<UserTable>[] = [
  { name: 'id', arrayType: 'text[]', value: (r) => r.id },
  { name: 'email', arrayType: 'text[]', value: (r) => r.email },
  { name: 'display_name', arrayType: 'text[]', value: (r) => r.display_name },
  { name: 'status', arrayType: 'text[]', value: (r) => r.status },
  { name: 'registered_at', arrayType: 'timestamptz[]', value: (r) => r.registered_at },
  { name: 'email_verified', arrayType: 'boolean[]', value: (r) => r.email_verified },
  tokenArrayColumn('roles', (r) => r.roles),
  { name: 'presence_visibility', arrayType: 'text[]', value: (r) => r.presence_visibility },
  { name: 'receipts_visibility', arrayType: 'text[]', value: (r) => r.receipts_visibility },
  { name: 'totp_enabled', arrayType: 'boolean[]', value: (r) => r.totp_enabled },
  { name: 'suspended_reason', arrayType: 'text[]', value: (r) => r.suspended_reason },
  { name: 'time_zone', arrayType: 'text[]', value: (r) => r.time_zone },
  { name: 'updated_at', arrayType: 'timestamptz[]', value: (r) => r.updated_at },
  { name: 'last_seq', arrayType: 'bigint[]', value: (r) => r.last_seq },
];

/** The user a user-subject event belongs to. */
export function userIdOf(event: StoredEvent): string | undefined {
  const data = event.data as { userId?: unknown };
  return typeof data.userId === 'string' ? data.userId : undefined;
}

/** The distinct users of some events, in first-seen order. */
export function userIdsOf(events: readonly StoredEvent[]): string[] {
  const ids = new Set<string>();
  for (const event of events) {
    const id = userIdOf(event);
    if (id !== undefined) ids.add(id);
  }
  return [...ids];
}


/**
 * Folds a batch into the final row of each user it touches, starting from the
 * rows already stored. Returns the rows and the users forgotten in the batch.
 */
export function foldUsers(
  events: readonly StoredEvent[],
  stored: ReadonlyMap<string, UserTable>,
  keys: ReadonlyMap<string, Buffer>,
): { rows: Map<string, UserTable>; forgotten: string[] } {
  const rows = new Map<string, UserTable>();
  const forgotten: string[] = [];
  for (const event of events) {
    const userId = userIdOf(event);
    if (!userId) continue;
    const key = keys.get(userId);
    if (event.type === 'identity.UserRegistered') {
      rows.set(userId, {
        id: userId,
        email: openText(key, userId, event.data.emailSealed),
        display_name: openText(key, userId, event.data.displayNameSealed),
        status: 'active',
        registered_at: event.data.registeredAt,
        email_verified: false,
        roles: event.data.roles.filter(isRole),
        presence_visibility: DEFAULT_VISIBILITY,
        receipts_visibility: DEFAULT_VISIBILITY,
        totp_enabled: false,
        suspended_reason: null,
        time_zone: DEFAULT_TIME_ZONE,
        updated_at: event.time,
        last_seq: event.seq,
      });
      continue;
    }
    const before = rows.get(userId) ?? stored.get(userId);
    if (!before) continue;
    const row: UserTable = { ...before, updated_at: event.time, last_seq: event.seq };
    switch (event.type) {
      case 'identity.EmailChanged':
        row.email = openText(key, userId, event.data.emailSealed);
        row.email_verified = false;
        break;
      case 'identity.EmailVerified':
        row.email_verified = true;
        break;
      case 'identity.RoleGranted':
        if (isRole(event.data.role) && !row.roles.includes(event.data.role)) row.roles = [...row.roles, event.data.role];
        break;
      case 'identity.RoleRevoked':
        row.roles = row.roles.filter((r) => r !== event.data.role);
        break;
      case 'identity.UserSuspended':
        row.status = 'suspended';
        row.suspended_reason = event.data.reason;
        break;
      case 'identity.UserReinstated':
        row.status = 'active';
        row.suspended_reason = null;
        break;
      case 'identity.UserForgotten':
        Object.assign(row, { status: 'forgotten', email: null, display_name: null, email_verified: false, suspended_reason: null, totp_enabled: false, time_zone: DEFAULT_TIME_ZONE });
        forgotten.push(userId);
        break;
      case 'identity.PrivacySettingsChanged':
        row.presence_visibility = asVisibility(event.data.presence);
        row.receipts_visibility = asVisibility(event.data.readReceipts);
        break;
      case 'identity.TimeZoneChanged':
        row.time_zone = event.data.timeZone;
        break;
      case 'identity.TotpEnabled':
        row.totp_enabled = true;
        break;
      case 'identity.TotpDisabled':
        row.totp_enabled = false;
        break;
      default:
        continue;
    }
    rows.set(userId, row);
  }
  return { rows, forgotten };
}

export const usersProjection: Projection = {
  name: 'users',
  context: 'identity',
  tables: ['users'],
  filter: (names) => names.aggregateSubjects('identity', 'user'),
  async apply(trx, events, ctx) {
    const ids = userIdsOf(events);
    if (ids.length === 0) return;
    // Users registered in this very batch have no stored row to start from: on a rebuild that is every user.
    const startsHere = new Set(userIdsOf(events.filter((e) => e.type === 'identity.UserRegistered')));
    const earlier = ids.filter((id) => !startsHere.has(id));
    const current = earlier.length > 0 ? await trx.selectFrom('users').selectAll().where('id', 'in', earlier).execute() : [];
    const stored = new Map(current.map((row) => [row.id, row]));
    const keys = await ctx.keys.getMany(ids, trx);
    const { rows, forgotten } = foldUsers(events, stored, keys);
    await upsertUnnest(trx, 'users', USER_COLUMNS, [...rows.values()], ['id']);
    if (forgotten.length > 0) await trx.deleteFrom('person_keys').where('user_id', 'in', forgotten).execute();
  },
};
