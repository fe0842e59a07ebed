/**
 * The audit tree in Postgres. The worker writes, in one transaction per
 * batch: the leaves (index, audit stream sequence, leaf hash), interior nodes
 * of level ≥ 8, event id → leaf index, and its position (frontier, tree size,
 * last sequence) fenced on the size it started from, so a second instance can
 * never append the same leaves twice. `prove` and `verify` read it back.
 *
 * Interior nodes below level 8 are not stored: any of them is recomputed from
 * at most 128 leaves, which keeps the table at n + n/128 rows instead of 2n.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Database } from '../../schema/database.js';
import { Frontier, nodeKey, rootOf, type NodeId } from '../../replay/audit/merkle.js';

export const STORED_MIN_LEVEL = 8;

export interface TreeState {
  stream: string;
  size: number;
  lastSeq: number;
  frontier: Frontier;
  checkpointSize: number;
}

export interface LeafRow {
  index: number;
  seq: number;
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
  if (!row) return { stream, size: 0, lastSeq: 0, frontier: Frontier.empty(), checkpointSize: 0 };
  return { stream, size: row.tree_size, lastSeq: row.last_seq, frontier: Frontier.fromBytes(row.tree_size, row.frontier), checkpointSize: row.checkpoint_size };
}

async function insertUnnest(trx: Transaction<Database>, table: string, columns: [string, string, unknown[]][], conflict: string): Promise<void> {
  if (columns[0]![2].length === 0) return;
  const names = sql.join(columns.map(([name]) => sql.id(name)));
  const arrays = sql.join(columns.map(([, type, values]) => sql`${values}::${sql.raw(type)}`));
  await sql`insert into ${sql.table(table)} (${names}) select * from unnest(${arrays}) as u(${names}) on conflict ${sql.raw(conflict)}`.execute(trx);
}

/** Appends a batch and moves the position from `fromSize` to `state.size`, all or nothing. */
export async function appendBatch(
  db: Kysely<Database>,
  fromSize: number,
  state: TreeState,
  batch: { leaves: LeafRow[]; nodes: NodeRow[]; events: EventRow[] },
): Promise<void> {
  await db.transaction().execute(async (trx) => {
    const moved = await sql<{ stream: string }>`
      insert into audit_state (stream, tree_size, last_seq, frontier, checkpoint_size)
      values (${state.stream}, ${state.size}, ${state.lastSeq}, ${state.frontier.toBytes()}, 0)
      on conflict (stream) do update set tree_size = excluded.tree_size, last_seq = excluded.last_seq,
        frontier = excluded.frontier, updated_at = now()
      where audit_state.tree_size = ${fromSize}
      returning stream`.execute(trx);
    // No row back: the stored size is not the one this batch started from.
    if (moved.rows.length !== 1) {
      throw new AuditStateFencedError(`the audit tree is no longer at size ${fromSize}: another instance is appending`);
    }
    await insertUnnest(trx, 'audit_leaves', [
      ['leaf_index', 'bigint[]', batch.leaves.map((l) => l.index)],
      ['seq', 'bigint[]', batch.leaves.map((l) => l.seq)],
      ['hash', 'bytea[]', batch.leaves.map((l) => l.hash)],
    ], '(leaf_index) do nothing');
    const stored = batch.nodes.filter((n) => n.level >= STORED_MIN_LEVEL);
    await insertUnnest(trx, 'audit_nodes', [
      ['level', 'smallint[]', stored.map((n) => n.level)],
      ['idx', 'bigint[]', stored.map((n) => n.index)],
      ['hash', 'bytea[]', stored.map((n) => n.hash)],
    ], '(level, idx) do nothing');
    // An id seen twice (a re-published event after the duplicate window) keeps its first leaf.
    await insertUnnest(trx, 'audit_events', [
      ['event_id', 'text[]', batch.events.map((e) => e.eventId)],
      ['leaf_index', 'bigint[]', batch.events.map((e) => e.leafIndex)],
    ], '(event_id) do nothing');
  });
}

export interface StoredCheckpoint {
  size: number;
  root: Buffer;
  note: string;
}

export async function recordCheckpoint(db: Kysely<Database>, stream: string, checkpoint: StoredCheckpoint): Promise<void> {
  await db.transaction().execute(async (trx) => {
    await trx
      .insertInto('audit_checkpoints')
      .values({ tree_size: checkpoint.size, root: checkpoint.root, note: checkpoint.note })
      .onConflict((oc) => oc.column('tree_size').doNothing())
      .execute();
    await trx
      .updateTable('audit_state')
      .set({ checkpoint_size: sql<number>`greatest(checkpoint_size, ${checkpoint.size})` })
      .where('stream', '=', stream)
      .execute();
  });
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
    .select(['e.leaf_index', 'l.seq', 'l.hash'])
    .where('e.event_id', '=', eventId)
    .executeTakeFirst();
  return row && { leafIndex: row.leaf_index, seq: row.seq, hash: row.hash };
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
  for (const id of ids) {
    if (id.level >= STORED_MIN_LEVEL) continue;
    const width = 2 ** id.level;
    out.set(nodeKey(id), rootOf(await leafHashes(db, id.index * width, (id.index + 1) * width)));
  }
  const missing = ids.find((id) => !out.has(nodeKey(id)));
  if (missing) throw new Error(`the audit tables lack node ${nodeKey(missing)}`);
  return out;
}
