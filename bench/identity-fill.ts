/**
 * A pre-filled identity stream for the projection and replay benchmarks:
 * `count` UserRegistered v3 events appended through EventStore.append, their
 * personal data sealed as the API seals it under one data key per person, the
 * keys written to person_keys (wrapped as PersonKeys wraps them) in batches.
 *
 * User i is derived from i alone (plus the stream sequence its append got), so
 * a baseline can rebuild exactly the rows a projector must write without the
 * bench holding a million row objects on its heap, which would slow every
 * major GC of a projector run sharing this process.
 */
import { randomBytes } from 'node:crypto';
import { requireMasterKey } from '../infra/config.js';
import type { Runtime } from '../infra/runtime.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { deriveKey, seal } from '../producers/identity/crypto/sealing.js';
import { EmailIndex } from '../producers/identity/email.js';
import type { UserTable } from '../schema/database.js';
import { fmt, inWindow } from './support.js';

/** Person keys per insert into person_keys while filling. */
const KEY_BATCH = 1000;
/** A stand-in argon2id PHC string of the real width: sealed into every registration as the API does, never opened here. */
const PASSWORD_HASH = `$argon2id$v=19$m=19456,t=2,p=1$${'s'.repeat(22)}$${'h'.repeat(43)}`;
/** Seconds between two fill progress lines. */
const PROGRESS_EVERY_MS = 10_000;

/** `count` users, the i-th one derived from i alone. */
export class Users {
  private readonly baseMs: number;
  private readonly tag = randomBytes(2).toString('hex').slice(0, 3);
  /** Stream sequence of each user's UserRegistered event (off-heap: one typed array). */
  readonly seqs: Float64Array;

  constructor(readonly count: number) {
    this.baseMs = Date.now() - count;
    this.seqs = new Float64Array(count);
  }

  /** A UUIDv7 whose timestamp is registration time and whose last 48 bits are i. */
  id(i: number): string {
    const ms = (this.baseMs + i).toString(16).padStart(12, '0');
    return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${this.tag}-8000-${i.toString(16).padStart(12, '0')}`;
  }

  /** The row the projector must write for the i-th registration (the event's time is its registration time). */
  row(i: number): UserTable {
    const registeredAt = new Date(this.baseMs + i);
    return {
      id: this.id(i),
      email: `user-${i.toString().padStart(8, '0')}@bench.relaygrid.test`,
      display_name: i % 5 === 0 ? null : `Bench User ${i}`,
      status: 'active',
      registered_at: registeredAt,
      email_verified: false,
      roles: ['client'],
      presence_visibility: 'contacts',
      receipts_visibility: 'contacts',
      totp_enabled: false,
      suspended_reason: null,
      updated_at: registeredAt,
      last_seq: this.seqs[i] ?? 0,
    };
  }
}

/**
 * Appends `users.count` sealed registrations through the event store with at
 * most `concurrency` appends in flight, recording each one's sequence, and
 * stores each person's key (wrapped as PersonKeys.create wraps it) in batches
 * of KEY_BATCH: the keys are only read once the fill is over. Prints a
 * progress line every 10 s.
 */
export async function fill(rt: Runtime, users: Users, concurrency: number): Promise<void> {
  const total = users.count;
  const store = new EventStore(rt.nats, rt.names, rt.registry);
  const master = requireMasterKey(rt.config);
  const wrapKey = deriveKey(master, 'person-key-wrap');
  const emails = new EmailIndex(master);
  let keys: { user_id: string; wrapped_key: Buffer }[] = [];
  const flushKeys = async () => {
    const batch = keys;
    keys = [];
    if (batch.length > 0) await rt.db.insertInto('person_keys').values(batch).execute();
  };
  let done = 0;
  const started = performance.now();
  const progress = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    console.log(`  fill: ${fmt.int(done)} / ${fmt.int(total)} (${fmt.int(done / s)} events/s)`);
  }, PROGRESS_EVERY_MS);
  try {
    await inWindow(total, concurrency, async (i) => {
      const row = users.row(i);
      const key = randomBytes(32);
      keys.push({ user_id: row.id, wrapped_key: seal(wrapKey, row.id, key) });
      if (keys.length >= KEY_BATCH) await flushKeys();
      const email = row.email ?? '';
      const { seq } = await store.append(
        rt.names.aggregate('identity', 'user', row.id),
        [
          {
            type: 'identity.UserRegistered',
            data: {
              userId: row.id,
              emailHash: emails.of(email),
              emailSealed: seal(key, row.id, email),
              displayNameSealed: row.display_name === null ? null : seal(key, row.id, row.display_name),
              passwordHashSealed: seal(key, row.id, PASSWORD_HASH),
              roles: row.roles,
              registeredAt: row.registered_at,
            },
          },
        ],
        { expectedSeq: 0, meta: { source: 'relaygrid/api', actor: `user:${row.id}`, correlationId: `fill-${i}` }, time: row.registered_at },
      );
      users.seqs[i] = seq;
      done++;
    });
    await flushKeys();
  } finally {
    clearInterval(progress);
  }
}
