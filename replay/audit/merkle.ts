/**
 * RFC 6962 §2.1 Merkle trees, pure. Three layers:
 *
 * - hashing: leaf and interior node hashes, the empty-tree hash, and `rootOf`,
 *   the recursive MTH exactly as the RFC states it (the reference the tests
 *   compare everything else with);
 * - proof shapes: which subtrees D[start:end] an inclusion proof (PATH) or a
 *   consistency proof (PROOF) of a tree of size n consists of. Every such
 *   subtree is either perfect (2^l leaves starting at a multiple of 2^l) or
 *   ends at n, and the latter splits into perfect subtrees folded right to
 *   left; so a proof only ever needs *perfect* nodes, and those complete at a
 *   known moment while leaves are appended;
 * - the frontier (compact range): the roots of the perfect subtrees covering
 *   [0, size), at most log2(size)+1 hashes. Appending a leaf merges them and
 *   reports every perfect node it completes, so the worker and the verifier
 *   keep O(log n) memory and still capture the nodes a later proof needs.
 *
 * Verifiers follow RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency).
 * Sizes and indexes are plain numbers (safe up to 2^53), so bit operations,
 * which JavaScript truncates to 32 bits, are written as arithmetic.
 */
import { hash } from 'node:crypto';

export const HASH_SIZE = 32;

/**
 * SHA-256 in one call. crypto.hash (Node ≥ 20.12) skips the Hash object and
 * its stream machinery, which cost more than the digest itself for the short
 * inputs of a tree; verify hashes every leaf and interior node of the log.
 */
export const sha256 = (data: Uint8Array): Buffer => hash('sha256', data, 'buffer');

/** MTH({}) = SHA-256(""). */
export const EMPTY_ROOT: Buffer = sha256(new Uint8Array());

export function leafHash(input: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(1 + input.length);
  buf[0] = 0x00;
  buf.set(input, 1);
  return sha256(buf);
}

// 0x01 ‖ left ‖ right, reused: hashing is synchronous and copies nothing out of it.
const NODE_INPUT = Buffer.alloc(1 + 2 * HASH_SIZE);

export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    return sha256(Buffer.concat([Buffer.of(0x01), left, right]));
  }
  NODE_INPUT[0] = 0x01;
  NODE_INPUT.set(left, 1);
  NODE_INPUT.set(right, 1 + HASH_SIZE);
  return sha256(NODE_INPUT);
}

/** The largest power of two strictly smaller than n (n ≥ 2): RFC 6962's split point k. */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

const isOdd = (x: number): boolean => x % 2 === 1;
const half = (x: number): number => Math.floor(x / 2);

/** MTH(D[n]) by the RFC's recursive definition, over leaf hashes. */
export function rootOf(leaves: readonly Uint8Array[]): Buffer {
  if (leaves.length === 0) return EMPTY_ROOT;
  if (leaves.length === 1) return Buffer.from(leaves[0]!);
  const k = splitPoint(leaves.length);
  return nodeHash(rootOf(leaves.slice(0, k)), rootOf(leaves.slice(k)));
}

/** The subtree D[start:end]. */
export interface Range {
  start: number;
  end: number;
}

/** A perfect subtree: leaves [index·2^level, (index+1)·2^level). Leaves are level 0. */
export interface NodeId {
  level: number;
  index: number;
}

export const nodeKey = (id: NodeId): string => `${id.level}:${id.index}`;

/** PATH(m, D[n]) as subtrees, in proof order (the leaf's sibling first). */
export function inclusionRanges(index: number, size: number): Range[] {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) {
    throw new RangeError(`no leaf ${index} in a tree of size ${size}`);
  }
  const out: Range[] = [];
  // Walk down from the root, then reverse: the RFC lists the deepest sibling first.
  let start = 0;
  let end = size;
  let m = index;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (m < k) {
      out.push({ start: start + k, end });
      end = start + k;
    } else {
      out.push({ start, end: start + k });
      start += k;
      m -= k;
    }
  }
  return out.reverse();
}

/** PROOF(m, D[n]) = SUBPROOF(m, D[n], true) as subtrees, in proof order. Empty when m is 0 or n. */
export function consistencyRanges(m: number, n: number): Range[] {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || m > n) {
    throw new RangeError(`no consistency proof from size ${m} to size ${n}`);
  }
  if (m === 0 || m === n) return [];
  const out: Range[] = [];
  let start = 0;
  let end = n;
  let mm = m;
  let whole = true; // SUBPROOF's b: is the old tree the whole current subtree's left edge?
  for (;;) {
    if (mm === end - start) {
      if (!whole) out.push({ start, end });
      break;
    }
    const k = splitPoint(end - start);
    if (mm <= k) {
      out.push({ start: start + k, end });
      end = start + k;
    } else {
      out.push({ start, end: start + k });
      start += k;
      mm -= k;
      whole = false;
    }
  }
  return out.reverse();
}

/**
 * The perfect subtrees D[start:end] is made of, left to right: the largest
 * aligned power of two at each step. For a tree node this is one node (a
 * perfect subtree) or the frontier of the right edge.
 */
export function perfectNodes(range: Range): NodeId[] {
  const out: NodeId[] = [];
  let at = range.start;
  while (at < range.end) {
    let level = 0;
    let width = 1;
    while (at % (width * 2) === 0 && at + width * 2 <= range.end) {
      width *= 2;
      level++;
    }
    out.push({ level, index: at / width });
    at += width;
  }
  return out;
}

/** Folds perfect node hashes right to left: MTH of a right-edge subtree. */
export function foldRight(hashes: readonly Uint8Array[]): Buffer {
  if (hashes.length === 0) return EMPTY_ROOT;
  let acc: Buffer = Buffer.from(hashes[hashes.length - 1]!);
  for (let i = hashes.length - 2; i >= 0; i--) acc = nodeHash(hashes[i]!, acc);
  return acc;
}

/** Resolves a proof's subtrees to hashes through a lookup of perfect nodes. */
export function proofHashes(ranges: readonly Range[], lookup: (id: NodeId) => Uint8Array): Buffer[] {
  return ranges.map((r) => foldRight(perfectNodes(r).map(lookup)));
}

/** Every perfect node a set of proofs needs (deduplicated). */
export function neededNodes(ranges: readonly Range[]): NodeId[] {
  const seen = new Map<string, NodeId>();
  for (const r of ranges) for (const id of perfectNodes(r)) seen.set(nodeKey(id), id);
  return [...seen.values()];
}

const equal = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0;

/** The root an inclusion proof leads to, or undefined when its shape is wrong (RFC 9162 §2.1.3.2). */
export function rootFromInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[]): Buffer | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return undefined;
  if (leaf.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) return undefined;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const p of proof) {
    if (sn === 0) return undefined;
    if (isOdd(fn) || fn === sn) {
      r = nodeHash(p, r);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 ? r : undefined;
}

export function verifyInclusion(index: number, size: number, leaf: Uint8Array, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  const computed = rootFromInclusion(index, size, leaf, proof);
  return computed !== undefined && equal(computed, root);
}

/** RFC 9162 §2.1.4.2, with the trivial cases (m = 0, m = n) decided first as RFC 6962 implementations do. */
export function verifyConsistency(m: number, n: number, firstRoot: Uint8Array, secondRoot: Uint8Array, proof: readonly Uint8Array[]): boolean {
  if (!Number.isSafeInteger(m) || !Number.isSafeInteger(n) || m < 0 || m > n) return false;
  if (firstRoot.length !== HASH_SIZE || secondRoot.length !== HASH_SIZE || proof.some((p) => p.length !== HASH_SIZE)) return false;
  if (m === n) return proof.length === 0 && equal(firstRoot, secondRoot);
  if (m === 0) return proof.length === 0;
  if (proof.length === 0) return false;
  // A power-of-two old tree is itself a node of the new one: the proof leaves it out.
  const path = isPowerOfTwo(m) ? [firstRoot, ...proof] : [...proof];
  let fn = m - 1;
  let sn = n - 1;
  while (isOdd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr: Buffer = Buffer.from(path[0]!);
  let sr: Buffer = Buffer.from(path[0]!);
  for (const c of path.slice(1)) {
    if (sn === 0) return false;
    if (isOdd(fn) || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (!isOdd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0 && equal(fr, firstRoot) && equal(sr, secondRoot);
}

function isPowerOfTwo(x: number): boolean {
  if (x < 1) return false;
  while (x % 2 === 0) x /= 2;
  return x === 1;
}

/** Called for every perfect node an append completes (the leaf itself at level 0). */
export type OnNode = (id: NodeId, hash: Buffer) => void;

/**
 * The compact range [0, size): roots of the perfect subtrees covering it,
 * largest (leftmost) first; exactly one per set bit of size.
 */
export class Frontier {
  private constructor(
    private treeSize: number,
    private readonly nodes: Buffer[],
  ) {}

  static empty(): Frontier {
    return new Frontier(0, []);
  }

  /** Restores a persisted frontier; checks that its length matches the size. */
  static restore(size: number, nodes: readonly Uint8Array[]): Frontier {
    if (!Number.isSafeInteger(size) || size < 0) throw new RangeError(`bad tree size ${size}`);
    if (nodes.length !== popcount(size) || nodes.some((n) => n.length !== HASH_SIZE)) {
      throw new RangeError(`a frontier of tree size ${size} has ${popcount(size)} hashes of ${HASH_SIZE} bytes, not ${nodes.length}`);
    }
    return new Frontier(size, nodes.map((n) => Buffer.from(n)));
  }

  /** Restores from `toBytes()`. */
  static fromBytes(size: number, bytes: Uint8Array): Frontier {
    const nodes: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += HASH_SIZE) nodes.push(Buffer.from(bytes.subarray(at, at + HASH_SIZE)));
    return Frontier.restore(size, nodes);
  }

  get size(): number {
    return this.treeSize;
  }

  /** The frontier hashes, concatenated largest subtree first. */
  toBytes(): Buffer {
    return Buffer.concat(this.nodes);
  }

  append(leaf: Uint8Array, onNode?: OnNode): void {
    if (leaf.length !== HASH_SIZE) throw new RangeError(`a leaf hash has ${HASH_SIZE} bytes, not ${leaf.length}`);
    let hash: Buffer = Buffer.from(leaf);
    let index = this.treeSize;
    let level = 0;
    onNode?.({ level, index }, hash);
    // Each trailing 1 bit of the old size is a perfect subtree the new leaf completes a sibling for.
    for (let s = this.treeSize; isOdd(s); s = half(s)) {
      hash = nodeHash(this.nodes.pop()!, hash);
      level++;
      index = half(index);
      onNode?.({ level, index }, hash);
    }
    this.nodes.push(hash);
    this.treeSize++;
  }

  root(): Buffer {
    return foldRight(this.nodes);
  }

  clone(): Frontier {
    return new Frontier(this.treeSize, [...this.nodes]);
  }
}

function popcount(x: number): number {
  let count = 0;
  for (let s = x; s > 0; s = half(s)) if (isOdd(s)) count++;
  return count;
}
