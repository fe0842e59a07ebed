/**
 * One payment provider's webhook event (`<ns>.evt.billing.provider-event.<provider>-<eventId>`):
 * recorded once, after its effect. A provider redelivers an event until it is
 * answered 2xx, and may deliver it twice anyway; the event id is the
 * provider's own, so its aggregate either exists (done: a redelivery changes
 * nothing) or does not (not done yet, whatever was attempted before a crash).
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import type { EventData } from '../../contracts/catalogue.js';
import type { Decider } from '../decider.js';

export type ProviderEventKey = 'billing.ProviderEventReceived';

/** applied: the order service recorded the payment or failure; rejected: one of its rules said no, which a retry cannot change. */
export const PROVIDER_EVENT_OUTCOMES = ['applied', 'rejected'] as const;
export type ProviderEventOutcome = (typeof PROVIDER_EVENT_OUTCOMES)[number];

export interface ProviderEventState {
  received: { eventType: string; outcome: ProviderEventOutcome; receivedAt: Date } | null;
}

export type ProviderEventCommand = { type: 'RecordProviderEvent' } & Omit<EventData<ProviderEventKey>, 'outcome'> & { outcome: ProviderEventOutcome };

type E = DomainEvent<ProviderEventKey>;

function decide(command: ProviderEventCommand, state: ProviderEventState): E[] {
  if (state.received) return [];
  const { type: _command, ...data } = command;
  return [{ type: 'billing.ProviderEventReceived', data }];
}

function evolve(_state: ProviderEventState, event: E): ProviderEventState {
  const { eventType, outcome, receivedAt } = event.data;
  return { received: { eventType, outcome: outcome as ProviderEventOutcome, receivedAt } };
}

export const providerEventDecider: Decider<ProviderEventState, ProviderEventCommand, ProviderEventKey> = {
  initialState: { received: null },
  decide,
  evolve,
};

/** The aggregate id: the provider's name and its event id, one subject token. */
export function providerEventId(provider: string, eventId: string): string {
  return `${provider}-${eventId}`;
}
