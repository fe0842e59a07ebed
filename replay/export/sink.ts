/** Where an export's events go: one implementation per `--format`. */
import type { ExportEvent } from './events.js';

export interface WrittenFile {
  path: string;
  events: number;
}

export interface ExportSink {
  /** Takes one event; the promise, when there is one, is backpressure: wait for it before the next. */
  write(event: ExportEvent): void | Promise<void>;
  /** Flushes, closes and moves the output into place; answers the files written. */
  finish(): Promise<WrittenFile[]>;
  /** Closes and removes whatever was written: a failed export leaves nothing behind. */
  abort(): Promise<void>;
}
