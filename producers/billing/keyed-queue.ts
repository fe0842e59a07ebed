/**
 * Runs tasks of one key one after another, tasks of other keys alongside.
 * Decisions on one hot aggregate from one process then take turns instead of
 * all loading the same sequence and all but one losing the append (each loser
 * would reload and retry, and enough of them exhaust the command handler's
 * attempts). Other processes still race: optimistic concurrency covers those.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    // A failed task does not hold up the next one: each caller gets its own outcome.
    const result = previous.then(task, task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Keys with a task queued or running (for tests: the map empties when the work does). */
  get size(): number {
    return this.tails.size;
  }
}
