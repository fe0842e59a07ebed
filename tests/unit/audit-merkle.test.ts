/**
 * RFC 6962 trees against the Certificate Transparency reference vectors, and
 * the incremental frontier and range-based proofs against the RFC's recursive
 * definitions (implemented here independently, straight from the text).
 */
import { describe, expect, it } from 'vitest';
import {
  consistencyRanges,
  EMPTY_ROOT,
  Frontier,
  inclusionRanges,
  leafHash,
  nodeHash,
  nodeKey,
  proofHashes,
  rootOf,
  splitPoint,
  verifyConsistency,
  verifyInclusion,
  type NodeId,
} from '../../replay/audit/merkle.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => Buffer.from(s, 'hex');

// certificate-transparency-go / transparency-dev merkle test data.
const CT_INPUTS = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(unhex);
const CT_ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
];
const CT_LEAVES = CT_INPUTS.map(leafHash);
// (leaf index, tree size, proof): the Go vectors number leaves from 1; these are 0-based.
const CT_INCLUSION: [number, number, string[]][] = [
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];
const CT_CONSISTENCY: [number, number, string[]][] = [
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
];

// RFC 6962 §2.1.1 and §2.1.2, recursively over leaf hashes: the reference.
function refPath(m: number, d: Buffer[]): Buffer[] {
  if (d.length <= 1) return [];
  const k = splitPoint(d.length);
  return m < k ? [...refPath(m, d.slice(0, k)), rootOf(d.slice(k))] : [...refPath(m - k, d.slice(k)), rootOf(d.slice(0, k))];
}
function refSubproof(m: number, d: Buffer[], b: boolean): Buffer[] {
  const n = d.length;
  if (m === n) return b ? [] : [rootOf(d)];
  const k = splitPoint(n);
  return m <= k ? [...refSubproof(m, d.slice(0, k), b), rootOf(d.slice(k))] : [...refSubproof(m - k, d.slice(k), false), rootOf(d.slice(0, k))];
}
const refProof = (m: number, d: Buffer[]) => (m === 0 || m === d.length ? [] : refSubproof(m, d, true));

/** A perfect-node lookup over all leaves, by the recursive definition. */
const lookupIn = (leaves: Buffer[]) => (id: NodeId) => rootOf(leaves.slice(id.index * 2 ** id.level, (id.index + 1) * 2 ** id.level));

const synthetic = (n: number) => Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)));

/** Every way of damaging a proof that must make it fail. */
function tampered(proof: Buffer[], extra: Buffer): Buffer[][] {
  const out: Buffer[][] = [];
  for (let i = 0; i < proof.length; i++) {
    const flipped = proof.map((p) => Buffer.from(p));
    flipped[i]![0]! ^= 0x10;
    out.push(flipped);
  }
  if (proof.length > 0) out.push(proof.slice(0, -1), proof.slice(1));
  if (proof.length > 1) out.push([proof[1]!, proof[0]!, ...proof.slice(2)]);
  out.push([...proof, extra], [extra, ...proof]);
  return out;
}

describe('RFC 6962 tree hash', () => {
  it('matches the reference roots for sizes 0..8, recursively and incrementally', () => {
    expect(hex(EMPTY_ROOT)).toBe(CT_ROOTS[0]);
    const frontier = Frontier.empty();
    expect(hex(frontier.root())).toBe(CT_ROOTS[0]);
    for (let n = 1; n <= 8; n++) {
      frontier.append(CT_LEAVES[n - 1]!);
      expect(hex(rootOf(CT_LEAVES.slice(0, n))), `recursive, size ${n}`).toBe(CT_ROOTS[n]);
      expect(hex(frontier.root()), `frontier, size ${n}`).toBe(CT_ROOTS[n]);
    }
  });

  it('the frontier agrees with the recursive definition up to 300 leaves, survives persistence and reports every perfect node', () => {
    const leaves = synthetic(300);
    let frontier = Frontier.empty();
    const nodes = new Map<string, Buffer>();
    for (let n = 1; n <= leaves.length; n++) {
      frontier.append(leaves[n - 1]!, (id, hash) => nodes.set(nodeKey(id), hash));
      expect(frontier.root().equals(rootOf(leaves.slice(0, n))), `size ${n}`).toBe(true);
      frontier = Frontier.fromBytes(frontier.size, frontier.toBytes());
    }
    const lookup = lookupIn(leaves);
    for (const [key, hash] of nodes) {
      const [level, index] = key.split(':').map(Number) as [number, number];
      expect(hash.equals(lookup({ level, index })), key).toBe(true);
    }
    expect(nodes.size).toBe(2 * 300 - 4); // every complete perfect subtree: 2n − popcount(n) of them
  });

  it('refuses a persisted frontier whose length does not fit its size', () => {
    expect(() => Frontier.fromBytes(3, Buffer.alloc(32))).toThrow(/tree size 3 has 2 hashes/);
  });
});

describe('inclusion proofs', () => {
  it('reproduce the reference proofs', () => {
    for (const [index, size, proof] of CT_INCLUSION) {
      const leaves = CT_LEAVES.slice(0, size);
      expect(proofHashes(inclusionRanges(index, size), lookupIn(leaves)).map(hex)).toEqual(proof);
      expect(verifyInclusion(index, size, CT_LEAVES[index]!, proof.map(unhex), unhex(CT_ROOTS[size]!))).toBe(true);
    }
  });

  it('for every (index, size) up to 8 (and 33): equal PATH, verify, and every tampering fails', () => {
    for (const [leaves, max] of [[CT_LEAVES, 8], [synthetic(33), 33]] as const) {
      for (let size = 1; size <= max; size++) {
        const tree = leaves.slice(0, size);
        const root = rootOf(tree);
        for (let index = 0; index < size; index++) {
          const proof = proofHashes(inclusionRanges(index, size), lookupIn(tree));
          expect(proof.map(hex), `${index}/${size}`).toEqual(refPath(index, tree).map(hex));
          expect(verifyInclusion(index, size, tree[index]!, proof, root), `${index}/${size}`).toBe(true);
          for (const bad of tampered(proof, root)) expect(verifyInclusion(index, size, tree[index]!, bad, root)).toBe(false);
          if (index > 0) expect(verifyInclusion(index - 1, size, tree[index]!, proof, root)).toBe(false);
          if (index + 1 < size) expect(verifyInclusion(index + 1, size, tree[index]!, proof, root)).toBe(false);
          expect(verifyInclusion(index, size * 2, tree[index]!, proof, root)).toBe(false);
          if (size > 1) expect(verifyInclusion(index, Math.floor(size / 2), tree[index]!, proof, root)).toBe(false);
          expect(verifyInclusion(index, size, leafHash(Buffer.from('not in the tree')), proof, root)).toBe(false);
          expect(verifyInclusion(index, size, tree[index]!, proof, EMPTY_ROOT)).toBe(false);
        }
      }
    }
  });

  it('rejects impossible positions', () => {
    expect(() => inclusionRanges(3, 3)).toThrow(RangeError);
    expect(verifyInclusion(0, 0, CT_LEAVES[0]!, [], EMPTY_ROOT)).toBe(false);
    expect(verifyInclusion(1, 1, CT_LEAVES[0]!, [], CT_LEAVES[0]!)).toBe(false);
    expect(verifyInclusion(0, 1, CT_LEAVES[0]!, [], CT_LEAVES[0]!)).toBe(true);
  });
});

describe('consistency proofs', () => {
  it('reproduce the reference proofs', () => {
    for (const [m, n, proof] of CT_CONSISTENCY) {
      expect(proofHashes(consistencyRanges(m, n), lookupIn(CT_LEAVES.slice(0, n))).map(hex)).toEqual(proof);
      expect(verifyConsistency(m, n, unhex(CT_ROOTS[m]!), unhex(CT_ROOTS[n]!), proof.map(unhex))).toBe(true);
    }
  });

  it('for every (m, n) up to 8 (and 33): equal PROOF, verify, and every tampering fails', () => {
    for (const [leaves, max] of [[CT_LEAVES, 8], [synthetic(33), 33]] as const) {
      for (let n = 0; n <= max; n++) {
        const tree = leaves.slice(0, n);
        const second = rootOf(tree);
        for (let m = 0; m <= n; m++) {
          const first = rootOf(tree.slice(0, m));
          const proof = proofHashes(consistencyRanges(m, n), lookupIn(tree));
          expect(proof.map(hex), `${m}→${n}`).toEqual(refProof(m, tree).map(hex));
          expect(verifyConsistency(m, n, first, second, proof), `${m}→${n}`).toBe(true);
          if (m === 0 || m === n) continue;
          for (const bad of tampered(proof, second)) expect(verifyConsistency(m, n, first, second, bad), `${m}→${n} tampered`).toBe(false);
          expect(verifyConsistency(m - 1, n, first, second, proof)).toBe(false);
          expect(verifyConsistency(m, n * 2, first, second, proof)).toBe(false);
          expect(verifyConsistency(m, Math.floor(n / 2), first, second, proof)).toBe(false);
          expect(verifyConsistency(m, n, second, first, proof)).toBe(false);
          expect(verifyConsistency(m, n, nodeHash(first, first), second, proof)).toBe(false);
          expect(verifyConsistency(m, n, first, second, [])).toBe(false);
        }
      }
    }
  });

  it('trivial and impossible cases', () => {
    const a = CT_LEAVES[0]!;
    const b = CT_LEAVES[1]!;
    expect(verifyConsistency(0, 5, a, b, [])).toBe(true);
    expect(verifyConsistency(3, 3, a, a, [])).toBe(true);
    expect(verifyConsistency(3, 3, a, b, [])).toBe(false);
    expect(verifyConsistency(3, 3, a, a, [a])).toBe(false);
    expect(verifyConsistency(4, 3, a, b, [])).toBe(false);
    expect(() => consistencyRanges(4, 3)).toThrow(RangeError);
  });
});
