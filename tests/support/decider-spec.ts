/**
 * Given/when/then for deciders: given these events, when this command, then
 * these events, or this error code. Pure: no store, no clock, no I/O.
 */
import { expect } from 'vitest';
import type { EventKey } from '../../contracts/catalogue.js';
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, fold, type Decider } from '../../producers/decider.js';

export function given<State, Command, K extends EventKey>(decider: Decider<State, Command, K>, history: DomainEvent<K>[] = []) {
  const state = fold(decider, decider.initialState, history);
  return {
    when(command: Command) {
      const run = () => decider.decide(command, state);
      return {
        then(expected: DomainEvent<K>[]): void {
          expect(run()).toEqual(expected);
        },
        thenError(code: string): void {
          let error: unknown;
          try {
            run();
          } catch (err) {
            error = err;
          }
          expect(error, `expected DomainError ${code}`).toBeInstanceOf(DomainError);
          expect((error as DomainError).code).toBe(code);
        },
      };
    },
  };
}
