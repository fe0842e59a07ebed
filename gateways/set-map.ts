/** Sets of values by key, an empty set dropped with its key: the gateway's indexes of connections by user, session and watched user. */
export class SetMap<K, V> {
  private readonly map = new Map<K, Set<V>>();

  add(key: K, value: V): void {
    let set = this.map.get(key);
    if (!set) this.map.set(key, (set = new Set()));
    set.add(value);
  }

  delete(key: K, value: V): void {
    const set = this.map.get(key);
    if (!set?.delete(value)) return;
    if (set.size === 0) this.map.delete(key);
  }

  /** A copy: callers may close connections (and so change the set) while they go through it. */
  get(key: K): V[] {
    return [...(this.map.get(key) ?? [])];
  }
}
