/**
 * `replay audit verify`: recomputes the tree from the bytes stored in a stream
 * and holds it against signed checkpoints.
 *
 * One pass over the stream, O(log n) memory: a frontier gives the root at
 * every checkpoint size, and the perfect nodes the consistency proofs between
 * consecutive checkpoints need are captured as they complete. The proofs are
 * then built from the recomputed tree and checked against the signed roots.
 *
 * Naming the first bad leaf: the checkpoints only say *that* the tree up to
 * some size differs. The audit worker's recorded leaf hashes say *where*, once
 * they are themselves shown to reproduce the signed root; then the first leaf
 * where the stream and the records differ is the first bad index. Without
 * such records the answer is a range between two checkpoints.
 */
import type { Kysely } from 'kysely';
import type { Runtime } from '../../infra/runtime.js';
import type { Database } from '../../schema/database.js';
import { leafHashes, loadTreeState } from '../../workers/audit/store.js';
import { Progress } from '../progress.js';
import type { VerifiedCheckpoint } from './checkpoint-source.js';
import { AuditFailedError } from './errors.js';
import { deliveredLeafHash } from './leaf.js';
import { readRange, resolveRange } from '../range.js';
import { consistencyRanges, Frontier, neededNodes, nodeKey, proofHashes, verifyConsistency, type NodeId } from './merkle.js';

export interface VerifyReport {
  stream: string;
  leaves: number;
  checkpoints: number;
  consistencyProofs: number;
  latest: VerifiedCheckpoint;
  /** Leaves after the latest checkpoint: stored, not yet signed. */
  unsigned: number;
}

const CHUNK = 10_000;

const at = (diff: { seq?: number }): string => (diff.seq === undefined ? ' (missing from the stream)' : ` (stream seq ${diff.seq})`);

/**
 * The audit worker's recorded leaf hashes, read a chunk at a time. Verify
 * walks them in index order, so `get` answers synchronously within the loaded
 * chunk (no promise per leaf) and the next chunk is fetched while this one is
 * in use, overlapping the Postgres read with the NATS read.
 */
class RecordedLeaves {
  private chunk: Buffer[] = [];
  private chunkStart = 0;
  private ahead: { start: number; rows: Promise<Buffer[]> } | undefined;

  private constructor(
    private readonly db: Kysely<Database>,
    readonly stream: string,
    readonly size: number,
  ) {}

  /** The records of the namespace's audit stream, when the worker has any. */
  static async open(db: Kysely<Database>, auditStream: string): Promise<RecordedLeaves | undefined> {
    try {
      const state = await loadTreeState(db, auditStream);
      return state.size > 0 ? new RecordedLeaves(db, auditStream, state.size) : undefined;
    } catch {
      // No audit tables, or another stream's: verify without records.
      return undefined;
    }
  }

  /** The record of leaf `index` when its chunk is loaded, else undefined (then `load`). */
  get(index: number): Buffer | undefined {
    return this.chunk[index - this.chunkStart];
  }

  /** Loads the chunk starting at `index` (< size) and prefetches the one after it. */
  async load(index: number): Promise<Buffer> {
    const ahead = this.ahead;
    this.ahead = undefined;
    const rows = ahead?.start === index ? ahead.rows : this.fetch(index);
    // Read ahead before awaiting, so both reads overlap the stream read.
    const nextStart = index + CHUNK;
    if (nextStart < this.size) {
      this.ahead = { start: nextStart, rows: this.fetch(nextStart) };
      // A prefetch nobody awaits (verify failed early) must not be an unhandled rejection.
      this.ahead.rows.catch(() => undefined);
    }
    this.chunk = await rows;
    this.chunkStart = index;
    return this.chunk[0]!;
  }

  async at(index: number): Promise<Buffer> {
    return this.get(index) ?? (await this.load(index));
  }

  private fetch(start: number): Promise<Buffer[]> {
    return leafHashes(this.db, start, Math.min(start + CHUNK, this.size));
  }
}

export async function verifyStream(rt: Runtime, stream: string, checkpoints: readonly VerifiedCheckpoint[]): Promise<VerifyReport> {
  try {
    return await verify(rt, stream, checkpoints);
  } catch (err) {
    // The finding goes on its own line, not after a half-drawn progress bar.
    if (process.stderr.isTTY) process.stderr.write('\r\u001b[K');
    throw err;
  }
}

async function verify(rt: Runtime, stream: string, checkpoints: readonly VerifiedCheckpoint[]): Promise<VerifyReport> {
  const latest = checkpoints.at(-1);
  if (!latest) throw new AuditFailedError('no checkpoints to verify against');
  const range = await resolveRange(rt, stream);
  const total = Math.max(0, range.to - range.from + 1);
  const records = await RecordedLeaves.open(rt.db, rt.names.auditStream);

  // Consistency proofs between consecutive checkpoints need these perfect nodes.
  const pairs = checkpoints.slice(1).map((c, i) => [checkpoints[i]!, c] as const);
  // By level, then index: the check runs for every node the tree completes, a key string only for the few wanted.
  const wanted: Set<number>[] = [];
  for (const id of neededNodes(pairs.flatMap(([a, b]) => consistencyRanges(a.size, b.size)))) (wanted[id.level] ??= new Set()).add(id.index);
  const captured = new Map<string, Buffer>();
  const capture = (id: NodeId, hash: Buffer) => {
    if (wanted[id.level]?.has(id.index)) captured.set(nodeKey(id), hash);
  };

  const tree = Frontier.empty();
  // The tree of the worker's records. Up to the first difference it is `tree`,
  // so it is only built from there on, starting from a copy of `tree`.
  let recordedTree: Frontier | undefined;
  let firstDiff: { index: number; seq?: number } | undefined;
  let next = 0; // the next checkpoint to reach
  let lastGood = 0; // size of the last checkpoint that matched
  const progress = new Progress(`audit verify ${stream}`, total);

  const fail = (size: number, what: string): never => {
    // Records equal to the stream throughout (no recordedTree) cannot agree with a checkpoint the stream fails.
    const recordsAgree = records && recordedTree && recordedTree.size === size && recordedTree.root().equals(checkpoints[next]?.root ?? Buffer.alloc(0));
    if (firstDiff && firstDiff.index < size && recordsAgree) {
      throw new AuditFailedError(`${stream}: ${what}: first bad index ${firstDiff.index}${at(firstDiff)}, the first leaf that differs from the audit worker's records of ${records.stream}`);
    }
    throw new AuditFailedError(`${stream}: ${what}: first bad index is between ${lastGood} and ${size - 1} (no matching worker records to narrow it down)`);
  };

  const checkReached = () => {
    while (next < checkpoints.length && checkpoints[next]!.size === tree.size) {
      const c = checkpoints[next]!;
      if (!tree.root().equals(c.root)) fail(c.size, `the tree of the first ${c.size} leaves does not match checkpoint ${c.source}`);
      lastGood = c.size;
      next++;
    }
  };

  /** Leaf `index` of the stream, with the worker's record of it when there is one. */
  const leaf = (index: number, hash: Buffer, seq: number, recorded: Buffer | undefined) => {
    if (recorded) {
      if (!firstDiff && !recorded.equals(hash)) {
        firstDiff = { index, seq };
        recordedTree = tree.clone();
      }
      recordedTree?.append(recorded);
    }
    tree.append(hash, capture);
    progress.add();
    checkReached();
  };
  // Synchronous per message: a promise only when the next chunk of records must be read.
  await readRange(rt.nats, range, (msg) => {
    const index = tree.size;
    const hash = deliveredLeafHash(msg);
    if (!records || index >= records.size) return leaf(index, hash, msg.seq, undefined);
    const recorded = records.get(index);
    if (recorded) return leaf(index, hash, msg.seq, recorded);
    const seq = msg.seq;
    return records.load(index).then((r) => leaf(index, hash, seq, r));
  });

  if (next < checkpoints.length) {
    const c = checkpoints[next]!;
    // Fewer leaves than a checkpoint covers: a leaf was removed, or the stream is another one.
    if (records && !firstDiff && records.size > tree.size) {
      firstDiff = { index: tree.size };
      recordedTree = tree.clone();
    }
    while (records && recordedTree && recordedTree.size < Math.min(c.size, records.size)) recordedTree.append(await records.at(recordedTree.size));
    fail(c.size, `the stream holds ${tree.size} leaves, but checkpoint ${c.source} covers ${c.size}`);
  }

  for (const [a, b] of pairs) {
    const proof = proofHashes(consistencyRanges(a.size, b.size), (id) => captured.get(nodeKey(id))!);
    if (!verifyConsistency(a.size, b.size, a.root, b.root, proof)) {
      throw new AuditFailedError(`${stream}: checkpoints ${a.source} and ${b.source} are not consistent: the log was rewritten between tree sizes ${a.size} and ${b.size}`);
    }
  }

  // Past the latest checkpoint nothing is signed yet; the worker's records still say whether the stream changed.
  if (firstDiff && firstDiff.index >= latest.size) {
    throw new AuditFailedError(`${stream}: first bad index ${firstDiff.index}${at(firstDiff)} differs from the audit worker's records (after the latest checkpoint, size ${latest.size})`);
  }

  const unsigned = tree.size - latest.size;
  progress.finish(
    `${checkpoints.length} checkpoints verified (latest: size ${latest.size}, root ${latest.root.toString('base64')}), ${pairs.length} consistency proofs, ${unsigned} leaves after the latest checkpoint`,
  );
  return { stream, leaves: tree.size, checkpoints: checkpoints.length, consistencyProofs: pairs.length, latest, unsigned };
}
