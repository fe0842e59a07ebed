/** `api_keys`: the keys each user holds (names, roles, state); never their secrets. */
import type { ApiKeyTable } from '../../schema/database.js';
import type { Projection } from '../runtime/projection.js';
import { upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';

const COLUMNS: UnnestColumn<ApiKeyTable>[] = [
  { name: 'id', arrayType: 'text[]', value: (r) => r.id },
  { name: 'user_id', arrayType: 'text[]', value: (r) => r.user_id },
  { name: 'name', arrayType: 'text[]', value: (r) => r.name },
  { name: 'roles', arrayType: 'text[]', cast: 'text[]', value: (r) => `{${r.roles.join(',')}}` },
  { name: 'issued_at', arrayType: 'timestamptz[]', value: (r) => r.issued_at },
  { name: 'revoked_at', arrayType: 'timestamptz[]', value: (r) => r.revoked_at },
  { name: 'last_seq', arrayType: 'bigint[]', value: (r) => r.last_seq },
];

export const apiKeysProjection: Projection = {
  name: 'api-keys',
  context: 'identity',
  tables: ['api_keys'],
  filter: (names) => names.aggregateSubjects('identity', 'apikey'),
  async apply(trx, events) {
    const issued = new Map<string, ApiKeyTable>();
    const revoked = new Map<string, { at: Date; seq: number }>();
    for (const event of events) {
      if (event.type === 'identity.ApiKeyIssued') {
        const d = event.data;
        issued.set(d.keyId, { id: d.keyId, user_id: d.userId, name: d.name, roles: d.roles, issued_at: d.issuedAt, revoked_at: null, last_seq: event.seq });
      } else if (event.type === 'identity.ApiKeyRevoked') {
        const row = issued.get(event.data.keyId);
        if (row) Object.assign(row, { revoked_at: event.data.revokedAt, last_seq: event.seq });
        else revoked.set(event.data.keyId, { at: event.data.revokedAt, seq: event.seq });
      }
    }
    // Keys issued in an earlier batch: their stored rows, revoked, go through the same one upsert.
    if (revoked.size > 0) {
      const stored = await trx.selectFrom('api_keys').selectAll().where('id', 'in', [...revoked.keys()]).execute();
      for (const row of stored) {
        const { at, seq } = revoked.get(row.id)!;
        issued.set(row.id, { ...row, revoked_at: at, last_seq: seq });
      }
    }
    await upsertUnnest(trx, 'api_keys', COLUMNS, [...issued.values()], ['id']);
  },
};
