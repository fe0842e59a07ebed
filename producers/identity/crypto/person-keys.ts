/**
 * The keyring of per-person data keys, kept outside the log in Postgres
 * (`person_keys`), each wrapped (sealed) by a subkey of the master key. Forgetting
 * a person deletes their row: from then on nothing sealed for them opens again,
 * not in a read model, not in a rebuild, not in an export.
 */
import { randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../../../schema/database.js';
import { Lru } from '../../event-store/lru.js';
import { deriveKey, open, seal } from './sealing.js';

type Db = Kysely<Database> | Transaction<Database>;

export class PersonKeys {
  private readonly wrapKey: Buffer;
  /** Unwrapped keys of recently seen people; forget() evicts. Other processes learn of a forget from the log. */
  private readonly cache = new Lru<string, Buffer>(10_000);

  constructor(
    private readonly db: Kysely<Database>,
    masterKey: Buffer,
  ) {
    this.wrapKey = deriveKey(masterKey, 'person-key-wrap');
  }

  /** Creates the person's key, or returns the existing one (a retried registration). */
  async create(userId: string): Promise<Buffer> {
    const key = randomBytes(32);
    const inserted = await this.db
      .insertInto('person_keys')
      .values({ user_id: userId, wrapped_key: seal(this.wrapKey, userId, key) })
      .onConflict((oc) => oc.column('user_id').doNothing())
      .returning('user_id')
      .executeTakeFirst();
    if (inserted) {
      this.cache.set(userId, key);
      return key;
    }
    const existing = await this.get(userId);
    if (!existing) throw new Error(`person key of ${userId} vanished while being created`);
    return existing;
  }

  /**
   * Stores keys made elsewhere, many per statement (bulk loads: benchmarks,
   * imports). Keys of people who already have one are left as they are.
   */
  async storeMany(entries: readonly { userId: string; key: Buffer }[]): Promise<void> {
    if (entries.length === 0) return;
    await this.db
      .insertInto('person_keys')
      .values(entries.map(({ userId, key }) => ({ user_id: userId, wrapped_key: seal(this.wrapKey, userId, key) })))
      .onConflict((oc) => oc.column('user_id').doNothing())
      .execute();
  }

  /** The person's key, or undefined once they were forgotten (or never had one). */
  async get(userId: string, db: Db = this.db): Promise<Buffer | undefined> {
    const cached = this.cache.get(userId);
    if (cached) return cached;
    return (await this.getMany([userId], db)).get(userId);
  }

  /** Keys of many people in one query (a projector batch); forgotten people are simply absent. */
  async getMany(userIds: readonly string[], db: Db = this.db): Promise<Map<string, Buffer>> {
    const out = new Map<string, Buffer>();
    if (userIds.length === 0) return out;
    const rows = await db.selectFrom('person_keys').select(['user_id', 'wrapped_key']).where('user_id', 'in', [...new Set(userIds)]).execute();
    for (const row of rows) out.set(row.user_id, open(this.wrapKey, row.user_id, row.wrapped_key));
    return out;
  }

  /** Destroys the person's key. Idempotent. */
  async forget(userId: string, db: Db = this.db): Promise<void> {
    this.cache.delete(userId);
    await db.deleteFrom('person_keys').where('user_id', '=', userId).execute();
  }
}

/** Opens a sealed UTF-8 value with a key that may be gone: null when forgotten or absent. */
export function openText(key: Buffer | undefined, userId: string, sealed: Uint8Array | null | undefined): string | null {
  if (!key || !sealed) return null;
  return open(key, userId, sealed).toString('utf8');
}
