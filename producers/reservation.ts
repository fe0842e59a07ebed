/**
 * Uniqueness through reservations: one subject per reserved key (an email
 * address's hash, a site's domain name), whose events say who holds it. The
 * first claim appends with expectation 0, so of two concurrent claims exactly
 * one wins; the other sees the holder and is refused. Only the holder can
 * release a key. A claim may move from a holder the caller found stale (see
 * claimOrTakeOver), and from no one else, so a takeover decided against one
 * holder cannot displace the next.
 *
 * What is specific to a context (its event types, its refusal, how it tells a
 * stale holder) is given by the context; the rule is here once.
 */
import type { EventKey } from '../contracts/catalogue.js';
import type { DomainEvent } from '../contracts/envelope.js';
import { DomainError, type Decider } from './decider.js';

export interface ReservationState {
  owner: string | null;
  reservedAt: Date | null;
}

/** What a context's reservation command asks, in the terms of any reservation. */
export type ReservationAsk = { release: true; owner: string } | { release: false; owner: string; takeOverFrom?: string | undefined };

export interface ReservationRules<Command, K extends EventKey> {
  ask(command: Command): ReservationAsk;
  reserved(command: Command): DomainEvent<K>;
  released(command: Command): DomainEvent<K>;
  /** The refusal when someone else holds the key; its details carry `owner` and `reservedAt` for claimOrTakeOver. */
  taken(state: ReservationState): DomainError;
  /** The holder an event leaves behind: `owner: null` after a release. */
  after(event: DomainEvent<K>): ReservationState;
}

export function reservationDecider<Command, K extends EventKey>(rules: ReservationRules<Command, K>): Decider<ReservationState, Command, K> {
  return {
    initialState: { owner: null, reservedAt: null },
    decide(command, state) {
      const ask = rules.ask(command);
      if (ask.release) {
        // Only the holder can give a key up; anything else is already done.
        return state.owner === ask.owner ? [rules.released(command)] : [];
      }
      if (state.owner === ask.owner) return [];
      if (state.owner !== null && state.owner !== ask.takeOverFrom) throw rules.taken(state);
      return [rules.reserved(command)];
    },
    evolve: (_state, event) => rules.after(event),
  };
}

/**
 * Claims a key; when someone else holds it and `gaveUp` finds that holder no
 * longer stands behind the claim, claims it again from that holder only.
 * Throws the context's `takenCode` refusal otherwise.
 */
export async function claimOrTakeOver(claim: (takeOverFrom?: string) => Promise<unknown>, takenCode: string, gaveUp: (holder: string, taken: DomainError) => Promise<boolean>): Promise<void> {
  try {
    await claim();
  } catch (err) {
    const holder = err instanceof DomainError && err.code === takenCode ? err.details['owner'] : undefined;
    if (typeof holder !== 'string' || !(await gaveUp(holder, err as DomainError))) throw err;
    await claim(holder);
  }
}
