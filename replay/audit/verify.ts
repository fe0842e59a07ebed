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
import { messageLeafHash, storedMessageOf } from './leaf.js';
import { readStored, storedCount } from './read.js';
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

/** The audit worker's recorded leaf hashes, read a chunk at a time. */
class RecordedLeaves {
  private chunk: Buffer[] = [];
  private chunkStart = 0;

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

  async at(index: number): Promise<Buffer | undefined> {
    if (index >= this.size) return undefined;
    if (index < this.chunkStart || index >= this.chunkStart + this.chunk.length) {
      this.chunkStart = index;
      this.chunk = await leafHashes(this.db, index, Math.min(index + CHUNK, this.size));
    }
    return this.chunk[index - this.chunkStart];
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
  const total = await storedCount(rt.nats, stream);
  const records = await RecordedLeaves.open(rt.db, rt.names.auditStream);

  // Consistency proofs between consecutive checkpoints need these perfect nodes.
  const pairs = checkpoints.slice(1).map((c, i) => [checkpoints[i]!, c] as const);
  const wanted = new Set(neededNodes(pairs.flatMap(([a, b]) => consistencyRanges(a.size, b.size))).map(nodeKey));
  const captured = new Map<string, Buffer>();
  const capture = (id: NodeId, hash: Buffer) => {
    const key = nodeKey(id);
    if (wanted.has(key)) captured.set(key, hash);
  };

  const tree = Frontier.empty();
  const recordedTree = Frontier.empty();
  let firstDiff: { index: number; seq?: number } | undefined;
  let next = 0; // the next checkpoint to reach
  let lastGood = 0; // size of the last checkpoint that matched
  const progress = new Progress(`audit verify ${stream}`, total);

  const fail = (size: number, what: string): never => {
    const recordsAgree = records && recordedTree.size === size && recordedTree.root().equals(checkpoints[next]?.root ?? Buffer.alloc(0));
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

  await readStored(rt.nats, stream, async (msg) => {
    const index = tree.size;
    const hash = messageLeafHash(storedMessageOf(msg));
    tree.append(hash, capture);
    if (records && index < records.size) {
      const recorded = (await records.at(index))!;
      recordedTree.append(recorded);
      if (!firstDiff && !recorded.equals(hash)) firstDiff = { index, seq: msg.seq };
    }
    progress.add();
    checkReached();
  });

  if (next < checkpoints.length) {
    const c = checkpoints[next]!;
    // Fewer leaves than a checkpoint covers: a leaf was removed, or the stream is another one.
    if (records && !firstDiff && records.size > tree.size) firstDiff = { index: tree.size };
    while (records && recordedTree.size < Math.min(c.size, records.size)) recordedTree.append((await records.at(recordedTree.size))!);
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
