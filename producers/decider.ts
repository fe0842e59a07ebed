/**
 * A decider is the whole behaviour of one aggregate as three pure functions:
 * `decide` turns a command and the current state into new events (or throws a
 * DomainError), `evolve` folds one event into the state, and `initialState` is
 * the state of an aggregate that has no events yet.
 */
import type { EventKey } from '../contracts/catalogue.js';
import type { DomainEvent } from '../contracts/envelope.js';

export interface Decider<State, Command, K extends EventKey = EventKey> {
  readonly initialState: State;
  decide(command: Command, state: State): DomainEvent<K>[];
  evolve(state: State, event: DomainEvent<K>): State;
}

/** A rule of the domain said no. `code` is stable: clients and tests match on it. */
export class DomainError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export function fold<State, K extends EventKey>(
  decider: Pick<Decider<State, unknown, K>, 'evolve'>,
  state: State,
  events: Iterable<DomainEvent<K>>,
): State {
  let next = state;
  for (const event of events) next = decider.evolve(next, event);
  return next;
}
