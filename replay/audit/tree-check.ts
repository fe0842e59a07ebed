/**
 * The check both verifiers run, whatever they read the log from (the stream
 * through NATS, or an export file): leaf hashes go in, in index order, and
 * the tree they make is held against signed checkpoints.
 *
 * One pass, O(log n) memory: a frontier gives the root at every checkpoint
 * size, and the perfect nodes the consistency proofs between consecutive
 * checkpoints need are captured as they complete. The proofs are then built
 * from the recomputed tree and checked against the signed roots.
 *
 * Naming the first bad leaf: the checkpoints only say *that* the tree up to
 * some size differs. The audit worker's recorded leaf hashes (one per leaf)
 * say *where*, once they are themselves shown to reproduce the signed root;
 * then the first leaf where the log and the records differ is the first bad
 * index. Without such records the answer is a range between two checkpoints.
 */
import type { VerifiedCheckpoint } from './checkpoint-source.js';
import { AuditFailedError } from './errors.js';
import { consistencyRanges, Frontier, neededNodes, nodeKey, proofHashes, verifyConsistency, type NodeId } from './merkle.js';

export interface TreeCheckLabels {
  /** What is verified, first in every finding: `RG_AUDIT`, `export audit.ndjson`. */
  log: string;
  /** The per-leaf records: `the audit worker's records of RG_AUDIT`. */
  records: string;
  /** Where a missing leaf is missing from: `the stream`, `the export`. */
  container: string;
}

export interface TreeCheckReport {
  leaves: number;
  checkpoints: number;
  consistencyProofs: number;
  latest: VerifiedCheckpoint;
  /** Leaves after the latest checkpoint: stored, not yet signed. */
  unsigned: number;
}

export class TreeCheck {
  private readonly tree = Frontier.empty();
  /** The tree of the worker's records. Up to the first difference it is `tree`, so it is only built from there on, from a copy. */
  private recordedTree: Frontier | undefined;
  private firstDiff: { index: number; seq?: number } | undefined;
  private next = 0; // the next checkpoint to reach
  private lastGood = 0; // size of the last checkpoint that matched
  private readonly pairs: (readonly [VerifiedCheckpoint, VerifiedCheckpoint])[];
  /** By level, then index: the check runs for every node the tree completes, a key string only for the few wanted. */
  private readonly wanted: Set<number>[] = [];
  private readonly captured = new Map<string, Buffer>();
  private readonly capture = (id: NodeId, hash: Buffer) => {
    if (this.wanted[id.level]?.has(id.index)) this.captured.set(nodeKey(id), hash);
  };

  /**
   * `checkpoints` ascending by size, at least one; `recordedSize` the number
   * of leaves the worker recorded (0: none), always a prefix of the log.
   */
  constructor(
    private readonly labels: TreeCheckLabels,
    private readonly checkpoints: readonly VerifiedCheckpoint[],
    readonly recordedSize: number,
  ) {
    if (checkpoints.length === 0) throw new AuditFailedError('no checkpoints to verify against');
    this.pairs = checkpoints.slice(1).map((c, i) => [checkpoints[i]!, c] as const);
    for (const id of neededNodes(this.pairs.flatMap(([a, b]) => consistencyRanges(a.size, b.size)))) (this.wanted[id.level] ??= new Set()).add(id.index);
  }

  /** The index the next leaf gets. */
  get size(): number {
    return this.tree.size;
  }

  /** The next leaf: its hash, its stream sequence, and the worker's record of it when there is one. */
  add(hash: Buffer, seq: number, recorded: Buffer | undefined): void {
    if (recorded) {
      if (!this.firstDiff && !recorded.equals(hash)) {
        this.firstDiff = { index: this.tree.size, seq };
        this.recordedTree = this.tree.clone();
      }
      this.recordedTree?.append(recorded);
    }
    this.tree.append(hash, this.capture);
    while (this.next < this.checkpoints.length && this.checkpoints[this.next]!.size === this.tree.size) {
      const c = this.checkpoints[this.next]!;
      if (!this.tree.root().equals(c.root)) this.fail(c.size, `the tree of the first ${c.size} leaves does not match checkpoint ${c.source}`);
      this.lastGood = c.size;
      this.next++;
    }
  }

  /**
   * After the last leaf: a checkpoint not reached, the consistency proofs,
   * records that differ after the latest checkpoint. `recordedAt` gives the
   * worker's records past the last leaf (index < recordedSize), which locate
   * a leaf missing from the log.
   */
  async end(recordedAt: (index: number) => Buffer | Promise<Buffer>): Promise<TreeCheckReport> {
    const { tree, checkpoints, labels } = this;
    const latest = checkpoints.at(-1)!;
    if (this.next < checkpoints.length) {
      const c = checkpoints[this.next]!;
      // Fewer leaves than a checkpoint covers: a leaf was removed, or the log is another one.
      if (!this.firstDiff && this.recordedSize > tree.size) {
        this.firstDiff = { index: tree.size };
        this.recordedTree = tree.clone();
      }
      const recordedTree = this.recordedTree;
      while (recordedTree && recordedTree.size < Math.min(c.size, this.recordedSize)) recordedTree.append(await recordedAt(recordedTree.size));
      this.fail(c.size, `${labels.container} holds ${tree.size} leaves, but checkpoint ${c.source} covers ${c.size}`);
    }

    for (const [a, b] of this.pairs) {
      const proof = proofHashes(consistencyRanges(a.size, b.size), (id) => this.captured.get(nodeKey(id))!);
      if (!verifyConsistency(a.size, b.size, a.root, b.root, proof)) {
        throw new AuditFailedError(`${labels.log}: checkpoints ${a.source} and ${b.source} are not consistent: the log was rewritten between tree sizes ${a.size} and ${b.size}`);
      }
    }

    // Past the latest checkpoint nothing is signed yet; the worker's records still say whether the log changed.
    if (this.firstDiff && this.firstDiff.index >= latest.size) {
      throw new AuditFailedError(`${labels.log}: first bad index ${this.firstDiff.index}${this.at(this.firstDiff)} differs from ${labels.records} (after the latest checkpoint, size ${latest.size})`);
    }
    return { leaves: tree.size, checkpoints: checkpoints.length, consistencyProofs: this.pairs.length, latest, unsigned: tree.size - latest.size };
  }

  private at(diff: { seq?: number }): string {
    return diff.seq === undefined ? ` (missing from ${this.labels.container})` : ` (stream seq ${diff.seq})`;
  }

  private fail(size: number, what: string): never {
    const { firstDiff, recordedTree, labels } = this;
    // Records equal to the log throughout (no recordedTree) cannot agree with a checkpoint the log fails.
    const recordsAgree = recordedTree && recordedTree.size === size && recordedTree.root().equals(this.checkpoints[this.next]?.root ?? Buffer.alloc(0));
    if (firstDiff && firstDiff.index < size && recordsAgree) {
      throw new AuditFailedError(`${labels.log}: ${what}: first bad index ${firstDiff.index}${this.at(firstDiff)}, the first leaf that differs from ${labels.records}`);
    }
    throw new AuditFailedError(`${labels.log}: ${what}: first bad index is between ${this.lastGood} and ${size - 1} (no matching worker records to narrow it down)`);
  }
}
