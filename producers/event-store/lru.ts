/** A small least-recently-used map: Map keeps insertion order, so re-inserting marks as recent. */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();

  constructor(private readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.capacity) {
      // Evict a sixteenth at once: V8 keeps deleted Map entries as holes until
      // it rehashes, so a fresh keys() iterator walks all of them to reach the
      // oldest live key (~7 µs per append at capacity). One pass per chunk
      // costs ~0.2 µs amortised.
      let evict = Math.max(this.map.size - this.capacity, Math.floor(this.capacity / 16));
      for (const oldest of this.map.keys()) {
        if (evict-- <= 0) break;
        this.map.delete(oldest);
      }
    }
  }

  delete(key: K): void {
    this.map.delete(key);
  }

  get size(): number {
    return this.map.size;
  }
}
