/**
 * `proxy_credentials`: what nodes need to let each user in, opened from the
 * sealed ProxyCredentialsIssued events. Suspension revokes (the fleet stops
 * rendering the user), reinstatement restores, forgetting deletes the row.
 */
import type { StoredEvent } from '../../contracts/envelope.js';
import { openText } from '../../producers/identity/crypto/person-keys.js';
import type { ProxyCredentials } from '../../producers/identity/proxy-credentials.js';
import type { ProxyCredentialTable } from '../../schema/database.js';
import type { Projection } from '../runtime/projection.js';
import { upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';
import { userIdOf, userIdsOf } from './users.projection.js';

const COLUMNS: UnnestColumn<ProxyCredentialTable>[] = [
  { name: 'user_id', arrayType: 'text[]', value: (r) => r.user_id },
  { name: 'generation', arrayType: 'integer[]', value: (r) => r.generation },
  { name: 'vless_id', arrayType: 'text[]', value: (r) => r.vless_id },
  { name: 'trojan_password', arrayType: 'text[]', value: (r) => r.trojan_password },
  { name: 'proxy_username', arrayType: 'text[]', value: (r) => r.proxy_username },
  { name: 'proxy_password', arrayType: 'text[]', value: (r) => r.proxy_password },
  { name: 'status', arrayType: 'text[]', value: (r) => r.status },
  { name: 'issued_at', arrayType: 'timestamptz[]', value: (r) => r.issued_at },
  { name: 'last_seq', arrayType: 'bigint[]', value: (r) => r.last_seq },
];

const RELEVANT = new Set(['identity.ProxyCredentialsIssued', 'identity.UserSuspended', 'identity.UserReinstated', 'identity.UserForgotten']);

function foldProxyCredentials(
  events: readonly StoredEvent[],
  stored: ReadonlyMap<string, ProxyCredentialTable>,
  keys: ReadonlyMap<string, Buffer>,
): { rows: Map<string, ProxyCredentialTable>; deleted: Set<string> } {
  const rows = new Map<string, ProxyCredentialTable>();
  const deleted = new Set<string>();
  for (const event of events) {
    const userId = userIdOf(event);
    if (!userId) continue;
    const before = rows.get(userId) ?? (deleted.has(userId) ? undefined : stored.get(userId));
    switch (event.type) {
      case 'identity.ProxyCredentialsIssued': {
        const text = openText(keys.get(userId), userId, event.data.credentialsSealed);
        if (!text) continue; // forgotten: nothing to serve
        const c = JSON.parse(text) as ProxyCredentials;
        rows.set(userId, {
          user_id: userId,
          generation: event.data.generation,
          vless_id: c.vlessId,
          trojan_password: c.trojanPassword,
          proxy_username: c.proxyUsername,
          proxy_password: c.proxyPassword,
          status: before?.status ?? 'active',
          issued_at: event.data.issuedAt,
          last_seq: event.seq,
        });
        deleted.delete(userId);
        break;
      }
      case 'identity.UserSuspended':
      case 'identity.UserReinstated':
        if (before) rows.set(userId, { ...before, status: event.type === 'identity.UserSuspended' ? 'revoked' : 'active', last_seq: event.seq });
        break;
      case 'identity.UserForgotten':
        rows.delete(userId);
        deleted.add(userId);
        break;
      default:
        break;
    }
  }
  return { rows, deleted };
}

export const proxyCredentialsProjection: Projection = {
  name: 'proxy-credentials',
  context: 'identity',
  tables: ['proxy_credentials'],
  filter: (names) => names.aggregateSubjects('identity', 'user'),
  async apply(trx, events, ctx) {
    const relevant = events.filter((e) => RELEVANT.has(e.type));
    const ids = userIdsOf(relevant);
    if (ids.length === 0) return;
    // Keys only to open issued credentials. Stored rows only for users whose first event here is not an
    // issue: an issue replaces the row, and credentials are never issued to a suspended user, so it
    // needs nothing from before (on a rebuild, that is every user).
    const issuing = userIdsOf(relevant.filter((e) => e.type === 'identity.ProxyCredentialsIssued'));
    const firstType = new Map<string, string>();
    for (const event of relevant) {
      const id = userIdOf(event);
      if (id !== undefined && !firstType.has(id)) firstType.set(id, event.type);
    }
    const earlier = ids.filter((id) => firstType.get(id) !== 'identity.ProxyCredentialsIssued');
    const current = earlier.length > 0 ? await trx.selectFrom('proxy_credentials').selectAll().where('user_id', 'in', earlier).execute() : [];
    const stored = new Map(current.map((row) => [row.user_id, row]));
    const keys = await ctx.keys.getMany(issuing, trx);
    const { rows, deleted } = foldProxyCredentials(relevant, stored, keys);
    await upsertUnnest(trx, 'proxy_credentials', COLUMNS, [...rows.values()], ['user_id']);
    if (deleted.size > 0) await trx.deleteFrom('proxy_credentials').where('user_id', 'in', [...deleted]).execute();
  },
};
