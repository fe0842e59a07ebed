/**
 * A sleep that a wake() ends early. A wake() while nobody sleeps is kept for the next sleep, so a
 * wake that races the end of a look at the due items is never lost.
 */
export class Wakeup {
  private pending = false;
  private resolve: (() => void) | undefined;

  sleep(ms: number): Promise<void> {
    if (this.pending) {
      this.pending = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.resolve = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.resolve = done;
    });
  }

  wake(): void {
    if (this.resolve) this.resolve();
    else this.pending = true;
  }
}
