import { createHash, randomFillSync } from 'node:crypto';

/**
 * UUIDv7 (RFC 9562): 48-bit millisecond timestamp, then randomness. Time-ordered
 * ids keep B-tree inserts local and make event ids sortable by creation time.
 */
/** Random bytes drawn in bulk: one randomFillSync per 256 ids instead of one per id. */
const POOL_IDS = 256;
const pool = Buffer.alloc(16 * POOL_IDS);
let poolOffset = pool.length;

function random16(): Buffer {
  if (poolOffset >= pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  // A view, not a copy: each 16-byte slice is handed out once.
  const bytes = pool.subarray(poolOffset, poolOffset + 16);
  poolOffset += 16;
  return bytes;
}

export function uuidv7(now = Date.now()): string {
  const bytes = random16();
  bytes.writeUIntBE(now, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return formatUuid(bytes);
}

/**
 * The id of a commit message holding several events: a UUIDv8 derived from
 * their ids, so a retry of the same decision produces the same Nats-Msg-Id
 * (and is deduplicated) while never colliding with an event id.
 */
export function commitIdOf(eventIds: readonly string[]): string {
  return derivedId(eventIds.join(','));
}

/** A UUIDv8 from a hash of `text`: an id every writer derives alike from the same facts (JetStream stores their copies once). */
export function derivedId(text: string): string {
  const bytes = createHash('sha256').update(text).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x80;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  return formatUuid(bytes);
}

function formatUuid(bytes: Buffer): string {
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
