/**
 * A secret held in memory (an API key, a signing secret) that cannot reach a
 * log line, an error text or a JSON answer by accident: every way of turning
 * it into text shows `[redacted]`. `reveal()` is the one way to the value, so
 * each use of it is a line a reviewer can find.
 */
import { inspect } from 'node:util';

const REDACTED = '[redacted]';

export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  reveal(): string {
    return this.#value;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return `Secret(${REDACTED})`;
  }
}
