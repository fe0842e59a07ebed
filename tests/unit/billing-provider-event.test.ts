import { describe, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { providerEventDecider, type ProviderEventCommand, type ProviderEventKey } from '../../producers/billing/provider-event.decider.js';
import { given } from '../support/decider-spec.js';

const at = new Date('2026-12-07T10:00:00Z');
const facts = {
  provider: 'stripe',
  eventId: 'evt_1',
  eventType: 'payment_intent.succeeded',
  objectRef: 'pi_1',
  orderId: 'ord_1',
  outcome: 'applied',
  detail: null,
  occurredAt: new Date('2026-12-07T09:59:58Z'),
  receivedAt: at,
} as const;
const record: ProviderEventCommand = { type: 'RecordProviderEvent', ...facts };
const received: DomainEvent<ProviderEventKey> = { type: 'billing.ProviderEventReceived', data: facts };

describe('provider event decider', () => {
  it('records an event the first time', () => {
    given(providerEventDecider).when(record).then([received]);
  });

  it('decides nothing for the same event again, whatever the second delivery would have done', () => {
    given(providerEventDecider, [received]).when(record).then([]);
    given(providerEventDecider, [received])
      .when({ ...record, outcome: 'rejected', detail: 'order_not_found' })
      .then([]);
  });
});
