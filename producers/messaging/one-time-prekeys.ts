/**
 * One-time prekeys: a command-side table, not a read model and not in the
 * events. Each key is a consumable that must be handed out at most once and
 * then forgotten, which a log that keeps everything forever cannot express
 * (a replay would hand them out again); so the log records only that keys
 * were uploaded (PreKeysUploaded, with a count), and this table holds them.
 */
import { sql, type Kysely } from 'kysely';
import type { Database, OneTimePreKeyTable } from '../../schema/database.js';
import { upsertUnnest, type UnnestColumn } from '../../projectors/runtime/unnest.js';
import type { OneTimePreKey } from './key-shapes.js';

const COLUMNS: UnnestColumn<OneTimePreKeyTable>[] = [
  { name: 'device_id', arrayType: 'text[]', value: (r) => r.device_id },
  { name: 'key_id', arrayType: 'integer[]', value: (r) => r.key_id },
  { name: 'public_key', arrayType: 'text[]', value: (r) => r.public_key },
];

export class OneTimePreKeys {
  constructor(private readonly db: Kysely<Database>) {}

  /** Stores a batch in one statement; an id the device already holds takes the new key (the client holds its private half). */
  async store(deviceId: string, keys: readonly OneTimePreKey[]): Promise<void> {
    const rows = keys.map((k) => ({ device_id: deviceId, key_id: k.id, public_key: k.publicKey }));
    await upsertUnnest(this.db, 'one_time_prekeys', COLUMNS, rows, ['device_id', 'key_id']);
  }

  async count(deviceId: string): Promise<number> {
    const row = await this.db.selectFrom('one_time_prekeys').select((eb) => eb.fn.countAll<string>().as('n')).where('device_id', '=', deviceId).executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  /**
   * Takes the device's lowest key and deletes it, in one statement: the row
   * lock taken by the subquery makes concurrent claims skip to the next key
   * (SKIP LOCKED) instead of waiting or taking the same one. Null when none is
   * left; the client then starts the session from the signed prekey alone.
   */
  async claim(deviceId: string): Promise<OneTimePreKey | null> {
    const { rows } = await sql<{ key_id: number; public_key: string }>`
      delete from one_time_prekeys
      where (device_id, key_id) = (
        select device_id, key_id from one_time_prekeys where device_id = ${deviceId}
        order by key_id limit 1 for update skip locked)
      returning key_id, public_key`.execute(this.db);
    const row = rows[0];
    return row ? { id: row.key_id, publicKey: row.public_key } : null;
  }

  /** A removed device's keys must never be handed out. */
  async discard(deviceId: string): Promise<void> {
    await this.db.deleteFrom('one_time_prekeys').where('device_id', '=', deviceId).execute();
  }
}
