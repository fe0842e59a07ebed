/**
 * An immutable set of strings that shares structure between versions (a hash
 * trie, 32 slots per node, 5 bits of a 32-bit FNV-1a hash per level): add and
 * delete copy one path, not the set. A decider's evolve must not change the
 * state it is given, and copying a native Set per event makes folding a
 * coupon with n redemptions O(n²) — a welcome coupon used by every customer
 * would take minutes to load cold.
 */
type Bucket = { readonly keys: readonly string[] };
type Slot = string | Bucket | Trie | undefined;
type Trie = readonly Slot[];

const BITS = 5;
const WIDTH = 1 << BITS;
/** Past this shift the hash has no bits left: keys colliding there share a bucket. */
const LAST_SHIFT = 30;

function hashOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

const isBucket = (slot: Slot): slot is Bucket => typeof slot === 'object' && !Array.isArray(slot);
const indexAt = (hash: number, shift: number) => (hash >>> shift) & (WIDTH - 1);

function replaced(node: Trie, index: number, slot: Slot): Trie {
  const copy = node.slice();
  copy[index] = slot;
  return copy;
}

function has(node: Trie, key: string, hash: number, shift: number): boolean {
  const slot = node[indexAt(hash, shift)];
  if (slot === undefined) return false;
  if (typeof slot === 'string') return slot === key;
  if (isBucket(slot)) return slot.keys.includes(key);
  return has(slot, key, hash, shift + BITS);
}

function added(node: Trie, key: string, hash: number, shift: number): Trie {
  const index = indexAt(hash, shift);
  const slot = node[index];
  if (slot === undefined) return replaced(node, index, key);
  if (typeof slot === 'string') {
    if (slot === key) return node;
    if (shift >= LAST_SHIFT) return replaced(node, index, { keys: [slot, key] });
    const child = added(added(new Array<Slot>(WIDTH), slot, hashOf(slot), shift + BITS), key, hash, shift + BITS);
    return replaced(node, index, child);
  }
  if (isBucket(slot)) return slot.keys.includes(key) ? node : replaced(node, index, { keys: [...slot.keys, key] });
  const child = added(slot, key, hash, shift + BITS);
  return child === slot ? node : replaced(node, index, child);
}

function removed(node: Trie, key: string, hash: number, shift: number): Trie {
  const index = indexAt(hash, shift);
  const slot = node[index];
  if (slot === undefined) return node;
  if (typeof slot === 'string') return slot === key ? replaced(node, index, undefined) : node;
  if (isBucket(slot)) {
    if (!slot.keys.includes(key)) return node;
    const keys = slot.keys.filter((k) => k !== key);
    return replaced(node, index, keys.length === 1 ? keys[0] : { keys });
  }
  const child = removed(slot, key, hash, shift + BITS);
  return child === slot ? node : replaced(node, index, child);
}

export class PersistentSet {
  static readonly EMPTY = new PersistentSet(new Array<Slot>(WIDTH), 0);

  private constructor(
    private readonly root: Trie,
    readonly size: number,
  ) {}

  has(key: string): boolean {
    return has(this.root, key, hashOf(key), 0);
  }

  /** This set with `key`; the same set when it is there already. */
  add(key: string): PersistentSet {
    const root = added(this.root, key, hashOf(key), 0);
    return root === this.root ? this : new PersistentSet(root, this.size + 1);
  }

  /** This set without `key`; the same set when it is not there. */
  delete(key: string): PersistentSet {
    const root = removed(this.root, key, hashOf(key), 0);
    return root === this.root ? this : new PersistentSet(root, this.size - 1);
  }
}
