import { describe, expect, it } from 'vitest';
import { Lru } from '../../producers/event-store/lru.js';

describe('aggregate state cache (LRU)', () => {
  it('never holds more than its capacity and evicts the least recently used first', () => {
    const lru = new Lru<number, number>(32);
    for (let i = 0; i < 32; i++) lru.set(i, i);
    lru.get(0); // 0 is now the most recent
    lru.set(32, 32);
    expect(lru.size).toBeLessThanOrEqual(32);
    expect(lru.get(0)).toBe(0);
    expect(lru.get(1)).toBeUndefined();
    expect(lru.get(32)).toBe(32);
  });

  it('evicts exactly one when it is small', () => {
    const lru = new Lru<string, number>(2);
    lru.set('a', 1);
    lru.set('b', 2);
    lru.set('c', 3);
    expect([lru.get('a'), lru.get('b'), lru.get('c')]).toEqual([undefined, 2, 3]);
  });
});
