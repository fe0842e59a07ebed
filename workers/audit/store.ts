/**
 * The audit tree in Postgres. The worker writes, in one transaction per
 * batch: the leaves (index, leaf hash; leaf i is the audit stream's message
 * i + 1), interior nodes of level ≥ 8, event id → leaf index, and its
 * position (frontier and tree size) fenced on the size it started from, so a
 * second instance can never append the same leaves twice. `prove` and
 * `verify` read it back.
 *
 * Interior nodes below level 8 are not stored: any of them is recomputed from
 * at most 128 leaves, which keeps the table at n + n/128 rows instead of 2n.
 */
import { sql, type Kysely } from 'kysely';
import { upsertUnnest, type UnnestColumn } from '../../projectors/runtime/unnest.js';
import type { Database } from '../../schema/database.js';
import { Frontier, nodeKey, rootOf, type NodeId } from '../../replay/audit/merkle.js';

export const STORED_MIN_LEVEL = 8;

export interface TreeState {
  stream: string;
  size: number;
  frontier: Frontier;
  /** Tree size of the newest signed checkpoint. */
  checkpointSize: number;
  /** When the newest checkpoint was signed; null before the first. */
  checkpointAt: Date | null;
}

export interface LeafRow {
  index: number;
  hash: Buffer;
}

export interface NodeRow extends NodeId {
  hash: Buffer;
}

export interface EventRow {
  eventId: string;
  leafIndex: number;
}

export class AuditStateFencedError extends Error {
  readonly code = 'audit_fenced';
}

/** The tree as the worker left it (an empty tree when it never ran). */
export async function loadTreeState(db: Kysely<Database>, stream: string): Promise<TreeState> {
  const rows = await db.selectFrom('audit_state').selectAll().execute();
  const other = rows.find((r) => r.stream !== stream);
  // The tables hold one log; mixing two streams' leaves would make every proof wrong.
  if (other) throw new Error(`the audit tables hold the tree of stream ${other.stream}, not ${stream}`);
  const row = rows[0];
  const newest = await db
    .selectFrom('audit_checkpoints')
    .select((eb) => [eb.fn.max('tree_size').as('size'), eb.fn.max('created_at').as('at')])
    .executeTakeFirst();
  const checkpointSize = Number(newest?.size ?? 0);
  const checkpointAt = newest?.at ? new Date(newest.at) : null;
  if (!row) return { stream, size: 0, frontier: Frontier.empty(), checkpointSize, checkpointAt };
  return { stream, size: row.tree_size, frontier: Frontier.fromBytes(row.tree_size, row.frontier), checkpointSize, checkpointAt };
}

const LEAF_COLUMNS: UnnestColumn<LeafRow>[] = [
  { name: 'leaf_index', arrayType: 'bigint[]', value: (l) => l.index },
  { name: 'hash', arrayType: 'bytea[]', value: (l) => l.hash },
];
const NODE_COLUMNS: UnnestColumn<NodeRow>[] = [
  { name: 'level', arrayType: 'smallint[]', value: (n) => n.level },
  { name: 'idx', arrayType: 'bigint[]', value: (n) => n.index },
  { name: 'hash', arrayType: 'bytea[]', value: (n) => n.hash },
];
const EVENT_COLUMNS: UnnestColumn<EventRow>[] = [
  { name: 'event_id', arrayType: 'text[]', value: (e) => e.eventId },
  { name: 'leaf_index', arrayType: 'bigint[]', value: (e) => e.leafIndex },
];

/** Appends a batch and moves the position from `fromSize` to `state.size`, all or nothing. */
export async function appendBatch(
  db: Kysely<Database>,
  fromSize: number,
  state: TreeState,
  batch: { leaves: LeafRow[]; nodes: NodeRow[]; events: EventRow[] },
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const moved = await sql<{ stream: string }>`
      insert into audit_state (stream, tree_size, frontier)
      values (${state.stream}, ${state.size}, ${state.frontier.toBytes()})
      on conflict (stream) do update set tree_size = excluded.tree_size, frontier = excluded.frontier, updated_at = now()
      where audit_state.tree_size = ${fromSize}
      returning stream`.execute(trx);
    // No row back: the stored size is not the one this batch started from.
    if (moved.rows.length !== 1) {
      throw new AuditStateFencedError(`the audit tree is no longer at size ${fromSize}: another instance is appending`);
    }
    await upsertUnnest(trx, 'audit_leaves', LEAF_COLUMNS, batch.leaves, ['leaf_index'], 'nothing');
    // The batch brings only nodes of STORED_MIN_LEVEL and up (the worker keeps no others).
    await upsertUnnest(trx, 'audit_nodes', NODE_COLUMNS, batch.nodes, ['level', 'idx'], 'nothing');
    // An id seen twice (a re-published event after the duplicate window) keeps its first leaf.
    await upsertUnnest(trx, 'audit_events', EVENT_COLUMNS, batch.events, ['event_id'], 'nothing');
  });
}

export interface StoredCheckpoint {
  size: number;
  root: Buffer;
  note: string;
}

export async function recordCheckpoint(db: Kysely<Database>, checkpoint: StoredCheckpoint): Promise<void> {
  await db
    .insertInto('audit_checkpoints')
    .values({ tree_size: checkpoint.size, root: checkpoint.root, note: checkpoint.note })
    .onConflict((oc) => oc.column('tree_size').doNothing())
    .execute();
}

/** The newest checkpoint covering leaf `index` (size > index), if any. */
export async function latestCheckpointCovering(db: Kysely<Database>, index: number): Promise<StoredCheckpoint | undefined> {
  const row = await db
    .selectFrom('audit_checkpoints')
    .select(['tree_size', 'root', 'note'])
    .where('tree_size', '>', index)
    .orderBy('tree_size', 'desc')
    .limit(1)
    .executeTakeFirst();
  return row && { size: row.tree_size, root: row.root, note: row.note };
}

export async function findEvent(db: Kysely<Database>, eventId: string): Promise<{ leafIndex: number; seq: number; hash: Buffer } | undefined> {
  const row = await db
    .selectFrom('audit_events as e')
    .innerJoin('audit_leaves as l', 'l.leaf_index', 'e.leaf_index')
    .select(['e.leaf_index', 'l.hash'])
    .where('e.event_id', '=', eventId)
    .executeTakeFirst();
  return row && { leafIndex: row.leaf_index, seq: row.leaf_index + 1, hash: row.hash };
}

/** Recorded leaf hashes [from, to), in index order. */
export async function leafHashes(db: Kysely<Database>, from: number, to: number): Promise<Buffer[]> {
  if (to <= from) return [];
  const rows = await db
    .selectFrom('audit_leaves')
    .select(['leaf_index', 'hash'])
    .where('leaf_index', '>=', from)
    .where('leaf_index', '<', to)
    .orderBy('leaf_index')
    .execute();
  if (rows.length !== to - from || rows.some((r, i) => r.leaf_index !== from + i)) throw new Error(`the audit tables lack leaves in [${from}, ${to})`);
  return rows.map((r) => r.hash);
}

/** Hashes of perfect nodes: stored ones looked up, lower ones recomputed from their leaves. */
export async function resolveNodes(db: Kysely<Database>, ids: readonly NodeId[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const stored = ids.filter((id) => id.level >= STORED_MIN_LEVEL);
  if (stored.length > 0) {
    const rows = await db
      .selectFrom('audit_nodes')
      .select(['level', 'idx', 'hash'])
      .where((eb) => eb.or(stored.map((id) => eb.and([eb('level', '=', id.level), eb('idx', '=', id.index)]))))
      .execute();
    for (const r of rows) out.set(nodeKey({ level: r.level, index: r.idx }), r.hash);
  }
  // Lower nodes from their leaves: one query per block of 2^STORED_MIN_LEVEL leaves they fall in
  // (a proof's low nodes sit in at most two: around its leaf, and at the right edge of the tree).
  const blocks = new Map<number, { id: NodeId; from: number; to: number }[]>();
  for (const id of ids) {
    if (id.level >= STORED_MIN_LEVEL) continue;
    const from = id.index * 2 ** id.level;
    const block = Math.floor(from / 2 ** STORED_MIN_LEVEL);
    blocks.set(block, [...(blocks.get(block) ?? []), { id, from, to: from + 2 ** id.level }]);
  }
  for (const [block, spans] of blocks) {
    const start = block * 2 ** STORED_MIN_LEVEL;
    const leaves = await leafHashes(db, start, Math.max(...spans.map((x) => x.to)));
    for (const x of spans) out.set(nodeKey(x.id), rootOf(leaves.slice(x.from - start, x.to - start)));
  }
  const missing = ids.find((id) => !out.has(nodeKey(id)));
  if (missing) throw new Error(`the audit tables lack node ${nodeKey(missing)}`);
  return out;
}
