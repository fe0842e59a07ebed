/**
 * A numbering series (`<ns>.evt.billing.document-series.<series>`, e.g.
 * `invoice-2026-EUR`): the one place numbers come from, so they are gapless
 * and unique by construction. A number is given to a document id once and for
 * ever, by appending to this aggregate with optimistic concurrency; asking
 * again for an id that has one decides nothing and the state answers it. A
 * crash after the append and before the invoice took its number leaves no gap:
 * the retry finds the number here.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import type { Decider } from '../decider.js';

export type SeriesEventKey = 'billing.DocumentNumbersAssigned';

export interface SeriesState {
  next: number;
  numbers: ReadonlyMap<string, number>;
}

export type SeriesCommand = { type: 'Assign'; series: string; documentIds: readonly string[]; at: Date };

type E = DomainEvent<SeriesEventKey>;

function decide(command: SeriesCommand, state: SeriesState): E[] {
  const fresh = [...new Set(command.documentIds)].filter((id) => !state.numbers.has(id));
  if (fresh.length === 0) return [];
  return [{ type: 'billing.DocumentNumbersAssigned', data: { series: command.series, first: state.next, documentIds: fresh, assignedAt: command.at } }];
}

function evolve(state: SeriesState, event: E): SeriesState {
  // States are values (the handler caches them): copy, then add. Batches keep the copies few (numbering.ts).
  const numbers = new Map(state.numbers);
  event.data.documentIds.forEach((id, i) => numbers.set(id, event.data.first + i));
  return { next: event.data.first + event.data.documentIds.length, numbers };
}

export const seriesDecider: Decider<SeriesState, SeriesCommand, SeriesEventKey> = { initialState: { next: 1, numbers: new Map() }, decide, evolve };
