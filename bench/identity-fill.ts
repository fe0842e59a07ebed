/**
 * A pre-filled identity stream for the projection and replay benchmarks:
 * `count` UserRegistered v3 events appended through EventStore.append, their
 * personal data sealed as the API seals it under one data key per person, the
 * keys written to person_keys through PersonKeys.storeMany in batches.
 *
 * User i is derived from i alone (plus the stream sequence its append got), so
 * a baseline can rebuild exactly the rows a projector must write without the
 * bench holding a million row objects on its heap, which would slow every
 * major GC of a projector run sharing this process.
 */
import { randomBytes } from 'node:crypto';
import { requireMasterKey } from '../infra/config.js';
import type { DomainEvent } from '../contracts/envelope.js';
import type { Runtime } from '../infra/runtime.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { PersonKeys } from '../producers/identity/crypto/person-keys.js';
import { seal } from '../producers/identity/crypto/sealing.js';
import { EmailIndex } from '../producers/identity/email.js';
import type { UserTable } from '../schema/database.js';
import { USER_COLUMNS } from '../projectors/identity/users.projection.js';
import { fmt, inWindow, rowCount, settleAudit, timed } from './support.js';

/** Person keys per insert into person_keys while filling. */
const KEY_BATCH = 1000;
/** A stand-in argon2id PHC string of the real width: sealed into every registration as the API does, never opened here. */
export const PASSWORD_HASH = `$argon2id$v=19$m=19456,t=2,p=1$${'s'.repeat(22)}$${'h'.repeat(43)}`;
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
      time_zone: 'UTC',
      updated_at: registeredAt,
      last_seq: this.seqs[i] ?? 0,
    };
  }
}

/**
 * Appends `count` events, one new user aggregate each, through the event store
 * with at most `concurrency` appends in flight, printing a progress line every
 * 10 s; answers nothing, `build(i)` records what it needs.
 */
export async function appendUsers(
  rt: Runtime,
  count: number,
  concurrency: number,
  build: (i: number) => Promise<{ userId: string; event: DomainEvent; at: Date }>,
  appended: (i: number, seq: number) => void = () => undefined,
): Promise<void> {
  const store = new EventStore(rt.nats, rt.names, rt.registry);
  let done = 0;
  const started = performance.now();
  const progress = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    console.log(`  fill: ${fmt.int(done)} / ${fmt.int(count)} (${fmt.int(done / s)} events/s)`);
  }, PROGRESS_EVERY_MS);
  try {
    await inWindow(count, concurrency, async (i) => {
      const { userId, event, at } = await build(i);
      const { seq } = await store.append(rt.names.aggregate('identity', 'user', userId), [event], {
        expectedSeq: 0,
        meta: { source: 'relaygrid/api', actor: `user:${userId}`, correlationId: `fill-${i}` },
        time: at,
      });
      appended(i, seq);
      done++;
    });
  } finally {
    clearInterval(progress);
  }
}

/** A registration sealed as the API seals it, under `key`. */
export function sealedRegistration(emails: EmailIndex, key: Buffer, row: Pick<UserTable, 'id' | 'email' | 'display_name' | 'roles' | 'registered_at'>): DomainEvent {
  const email = row.email ?? '';
  return {
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
  };
}

/**
 * Appends `users.count` sealed registrations, recording each one's sequence,
 * and stores each person's key through PersonKeys.storeMany in batches of
 * KEY_BATCH: the keys are only read once the fill is over.
 */
export async function fill(rt: Runtime, users: Users, concurrency: number): Promise<void> {
  const master = requireMasterKey(rt.config);
  const personKeys = new PersonKeys(rt.db, master);
  const emails = new EmailIndex(master);
  let keys: { userId: string; key: Buffer }[] = [];
  const flushKeys = async () => {
    const batch = keys;
    keys = [];
    await personKeys.storeMany(batch);
  };
  await appendUsers(
    rt,
    users.count,
    concurrency,
    async (i) => {
      const row = users.row(i);
      const key = randomBytes(32);
      keys.push({ userId: row.id, key });
      if (keys.length >= KEY_BATCH) await flushKeys();
      return { userId: row.id, event: sealedRegistration(emails, key, row), at: row.registered_at };
    },
    (i, seq) => {
      users.seqs[i] = seq;
    },
  );
  await flushKeys();
}

/**
 * Fills the identity stream with `count` registrations (not measured), waits
 * for the audit stream to source them, checks the stream and person_keys hold
 * exactly that many, and prints one line. Answers the users and the last sequence.
 */
export async function fillIdentityStream(rt: Runtime, count: number, concurrency: number): Promise<{ users: Users; lastSeq: number }> {
  console.log(`filling ${rt.names.stream('identity')} (not measured)`);
  const users = new Users(count);
  const seconds = await timed(async () => {
    await fill(rt, users, concurrency);
    await settleAudit(rt);
  });
  const { state } = await rt.nats.jsm.streams.info(rt.names.stream('identity'));
  if (state.messages !== count) throw new Error(`expected ${count} messages in the identity stream, found ${state.messages}`);
  const keyCount = await rowCount(rt, 'person_keys');
  if (keyCount !== count) throw new Error(`expected ${count} person keys, found ${keyCount}`);
  console.log(`  filled ${fmt.int(count)} events in ${fmt.s(seconds)} s (${fmt.int(count / seconds)} events/s, audit stream caught up); last sequence ${state.last_seq}`);
  return { users, lastSeq: state.last_seq };
}

/**
 * Rows of `users` equal, column for column (NULLs alike), to the row with the
 * same id in `other`: how the benchmarks check a projection against a
 * reference.
 */
export async function agreeingUserRows(rt: Runtime, other: string): Promise<number> {
  const columns = USER_COLUMNS.map((c) => c.name).filter((name) => name !== 'id');
  const { rows } = await rt.pool.query<{ n: number }>(
    `select count(*)::int as n from users u join ${other} o using (id)
      where (${columns.map((c) => `u.${c}`).join(', ')}) is not distinct from (${columns.map((c) => `o.${c}`).join(', ')})`,
  );
  return rows[0]?.n ?? 0;
}
