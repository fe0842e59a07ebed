/**
 * What the gateway needs to know about people, from the messaging read models
 * (devices, blocks, contacts, group members) and the users table: one query
 * per question, each answer cached for a moment because a busy sender asks
 * the same question many times a second. A stale "mismatch" answer is checked
 * again uncached before the client hears it (see Sending).
 */
import { sql, type Kysely } from 'kysely';
import type { Database } from '../schema/database.js';
import type { Visibility } from '../producers/identity/privacy.js';
import { Lru } from '../producers/event-store/lru.js';

/** One send's view of its two parties. */
export interface Conversation {
  /** Active devices of the recipient. */
  recipientDevices: string[];
  /** Active devices of the sender. */
  senderDevices: string[];
  /** The recipient has blocked the sender. */
  blocked: boolean;
  /** The recipient exists (is an active user). */
  recipientExists: boolean;
}

/** How one user may see another: presence and receipts follow the watched user's settings. */
export interface Relation {
  presence: Visibility;
  receipts: Visibility;
  /** `of` has `viewer` among their contacts. */
  isContact: boolean;
  /** `of` has blocked `viewer`. */
  blocked: boolean;
}

/** Answers kept for a moment, in the project's LRU (bounded, least recent out first). */
class TtlCache<V> {
  private readonly entries = new Lru<string, { value: V; until: number }>(50_000);
  constructor(private readonly ttlMs: number) {}

  async get(key: string, load: () => Promise<V>, fresh = false): Promise<V> {
    const now = Date.now();
    const hit = this.entries.get(key);
    if (hit && hit.until > now && !fresh) return hit.value;
    const value = await load();
    this.entries.set(key, { value, until: now + this.ttlMs });
    return value;
  }
}

export class Directory {
  private readonly conversations: TtlCache<Conversation>;
  private readonly relations: TtlCache<Relation>;
  private readonly memberships: TtlCache<boolean>;
  private readonly owners: TtlCache<string | undefined>;

  constructor(
    private readonly db: Kysely<Database>,
    cacheMs = 1000,
  ) {
    this.conversations = new TtlCache(cacheMs);
    this.relations = new TtlCache(cacheMs);
    this.memberships = new TtlCache(cacheMs);
    this.owners = new TtlCache(cacheMs);
  }

  conversation(sender: string, recipient: string, fresh = false): Promise<Conversation> {
    return this.conversations.get(
      `${sender}>${recipient}`,
      async () => {
        const { rows } = await sql<{ user_id: string; id: string | null; blocked: boolean; recipient_exists: boolean }>`
          select u.user_id, d.id,
                 exists(select 1 from blocks where user_id = ${recipient} and blocked_id = ${sender}) as blocked,
                 exists(select 1 from users where id = ${recipient} and status = 'active') as recipient_exists
          from (values (${sender}::text), (${recipient}::text)) as u(user_id)
          left join devices d on d.user_id = u.user_id and d.removed_at is null`.execute(this.db);
        const devicesOf = (user: string) => rows.filter((r) => r.user_id === user && r.id !== null).map((r) => r.id as string);
        return {
          recipientDevices: devicesOf(recipient),
          senderDevices: devicesOf(sender),
          blocked: rows[0]?.blocked ?? false,
          recipientExists: rows[0]?.recipient_exists ?? false,
        };
      },
      fresh,
    );
  }

  /** The device's owner, if it is active. */
  deviceOwner(deviceId: string, fresh = false): Promise<string | undefined> {
    return this.owners.get(
      deviceId,
      async () => {
        const { rows } = await sql<{ user_id: string }>`select user_id from devices where id = ${deviceId} and removed_at is null`.execute(this.db);
        return rows[0]?.user_id;
      },
      fresh,
    );
  }

  isMember(groupId: string, userId: string): Promise<boolean> {
    return this.memberships.get(`${groupId}/${userId}`, async () => {
      const { rows } = await sql<{ one: number }>`select 1 as one from group_members where group_id = ${groupId} and user_id = ${userId}`.execute(this.db);
      return rows.length > 0;
    });
  }

  /** The groups a user belongs to, with when they joined (group messages before that are not theirs). Uncached: asked once per connection. */
  async groupsOf(userId: string): Promise<{ groupId: string; since: Date }[]> {
    const { rows } = await sql<{ group_id: string; added_at: Date | null }>`select group_id, added_at from group_members where user_id = ${userId}`.execute(this.db);
    return rows.map((r) => ({ groupId: r.group_id, since: r.added_at ?? new Date(0) }));
  }

  /** How `viewer` may see `of`. */
  relation(of: string, viewer: string): Promise<Relation> {
    return this.relations.get(`${of}~${viewer}`, async () => {
      const { rows } = await sql<{ presence_visibility: string; receipts_visibility: string; is_contact: boolean; blocked: boolean }>`
        select presence_visibility, receipts_visibility,
               exists(select 1 from contacts where user_id = ${of} and contact_id = ${viewer}) as is_contact,
               exists(select 1 from blocks where user_id = ${of} and blocked_id = ${viewer}) as blocked
        from users where id = ${of}`.execute(this.db);
      const row = rows[0];
      if (!row) return { presence: 'nobody', receipts: 'nobody', isContact: false, blocked: true };
      return { presence: row.presence_visibility as Visibility, receipts: row.receipts_visibility as Visibility, isContact: row.is_contact, blocked: row.blocked };
    });
  }
}

/** Whether a setting lets the viewer see: everyone, contacts only, or nobody; never someone blocked. */
export function visibleTo(setting: Visibility, relation: Pick<Relation, 'isContact' | 'blocked'>): boolean {
  if (relation.blocked) return false;
  return setting === 'everyone' || (setting === 'contacts' && relation.isContact);
}
