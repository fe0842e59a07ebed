/**
 * `devices`: every messenger device with its public identity key and signed
 * prekey; removed devices keep their row with `removed_at` set. Key bundles
 * and the gateway (which devices may connect, where a message fans out) read it.
 */
import type { StoredEvent } from '../../contracts/envelope.js';
import type { DeviceTable } from '../../schema/database.js';
import type { Projection } from '../runtime/projection.js';
import { upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';
import { foldRows, storedById, type RowStep } from '../runtime/batch-fold.js';

const COLUMNS: UnnestColumn<DeviceTable>[] = [
  { name: 'id', arrayType: 'text[]', value: (r) => r.id },
  { name: 'user_id', arrayType: 'text[]', value: (r) => r.user_id },
  { name: 'name', arrayType: 'text[]', value: (r) => r.name },
  { name: 'identity_key', arrayType: 'text[]', value: (r) => r.identity_key },
  { name: 'signed_prekey_id', arrayType: 'integer[]', value: (r) => r.signed_prekey_id },
  { name: 'signed_prekey', arrayType: 'text[]', value: (r) => r.signed_prekey },
  { name: 'signed_prekey_signature', arrayType: 'text[]', value: (r) => r.signed_prekey_signature },
  { name: 'registered_at', arrayType: 'timestamptz[]', value: (r) => r.registered_at },
  { name: 'removed_at', arrayType: 'timestamptz[]', value: (r) => r.removed_at },
  { name: 'last_seq', arrayType: 'bigint[]', value: (r) => r.last_seq },
];

function step(event: StoredEvent): RowStep<DeviceTable> {
  const seq = event.seq;
  switch (event.type) {
    case 'messaging.DeviceRegistered': {
      const d = event.data;
      return {
        id: d.deviceId,
        create: {
          id: d.deviceId,
          user_id: d.userId,
          name: d.name,
          identity_key: d.identityKey,
          signed_prekey_id: d.signedPreKeyId,
          signed_prekey: d.signedPreKey,
          signed_prekey_signature: d.signedPreKeySignature,
          registered_at: d.registeredAt,
          removed_at: null,
          last_seq: seq,
        },
      };
    }
    case 'messaging.SignedPreKeyRotated': {
      const d = event.data;
      return { id: d.deviceId, update: (row) => ({ ...row, signed_prekey_id: d.signedPreKeyId, signed_prekey: d.signedPreKey, signed_prekey_signature: d.signedPreKeySignature, last_seq: seq }) };
    }
    case 'messaging.DeviceRemoved':
      return { id: event.data.deviceId, update: (row) => ({ ...row, removed_at: event.data.removedAt, last_seq: seq }) };
    default:
      return undefined;
  }
}

export const devicesProjection: Projection = {
  name: 'devices',
  context: 'messaging',
  tables: ['devices'],
  filter: (names) => names.aggregateSubjects('messaging', 'devices'),
  async apply(trx, events) {
    const rows = await foldRows(events, step, storedById<DeviceTable>(trx, 'devices'));
    await upsertUnnest(trx, 'devices', COLUMNS, rows, ['id']);
  },
};
