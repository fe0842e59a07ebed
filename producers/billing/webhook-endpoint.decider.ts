/**
 * An integrator's webhook endpoint (`<ns>.evt.billing.webhook-endpoint.<id>`):
 * created with a sealed signing secret, its secret rotated (the old one keeps
 * signing alongside until a grace instant), disabled by its receiver's 410
 * Gone, deleted by an admin. Input arrives validated and the secret sealed
 * (producers/billing/webhooks.ts); the decider owns existence and change.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';

export type WebhookEndpointEventKey = 'billing.WebhookEndpointCreated' | 'billing.WebhookEndpointSecretRotated' | 'billing.WebhookEndpointDisabled' | 'billing.WebhookEndpointDeleted';

export type WebhookEndpointStatus = 'active' | 'disabled' | 'deleted';

export interface WebhookEndpointState {
  endpointId: string | null;
  status: WebhookEndpointStatus;
  url: string;
  eventTypes: readonly string[];
  /** Sealed; opened only to sign (webhooks.ts signingSecrets). */
  secretSealed: Uint8Array | null;
  /** 1 at creation, +1 per rotation: what the read model shows, so a signer knows its cached secret is stale. */
  secretVersion: number;
  previous: { secretSealed: Uint8Array; validUntil: Date } | null;
}

export type WebhookEndpointCommand =
  | { type: 'Create'; endpointId: string; url: string; eventTypes: string[]; description: string | null; secretSealed: Uint8Array; by: string; at: Date }
  | { type: 'RotateSecret'; secretSealed: Uint8Array; previousValidUntil: Date; by: string; at: Date }
  | { type: 'Disable'; reason: string; webhookId: string | null; by: string; at: Date }
  | { type: 'Delete'; by: string; at: Date };

type E = DomainEvent<WebhookEndpointEventKey>;

function decide(command: WebhookEndpointCommand, state: WebhookEndpointState): E[] {
  if (command.type === 'Create') {
    if (state.endpointId) throw new DomainError('webhook_endpoint_exists', `webhook endpoint ${command.endpointId} already exists`);
    const { endpointId, url, eventTypes, description, secretSealed, by, at } = command;
    return [{ type: 'billing.WebhookEndpointCreated', data: { endpointId, url, eventTypes, description, secretSealed: Buffer.from(secretSealed), by, createdAt: at } }];
  }
  const endpointId = state.endpointId;
  // A deleted endpoint answers like one that never was: its id is not a door to anything.
  if (!endpointId || state.status === 'deleted') throw new DomainError('webhook_endpoint_not_found', 'no such webhook endpoint');
  switch (command.type) {
    case 'RotateSecret':
      return [{ type: 'billing.WebhookEndpointSecretRotated', data: { endpointId, secretSealed: Buffer.from(command.secretSealed), previousValidUntil: command.previousValidUntil, by: command.by, rotatedAt: command.at } }];
    case 'Disable':
      // A second 410 (another delivery in flight when the first came back) records nothing.
      if (state.status === 'disabled') return [];
      return [{ type: 'billing.WebhookEndpointDisabled', data: { endpointId, reason: command.reason, webhookId: command.webhookId, by: command.by, disabledAt: command.at } }];
    case 'Delete':
      return [{ type: 'billing.WebhookEndpointDeleted', data: { endpointId, by: command.by, deletedAt: command.at } }];
  }
}

function evolve(state: WebhookEndpointState, event: E): WebhookEndpointState {
  switch (event.type) {
    case 'billing.WebhookEndpointCreated': {
      const d = event.data;
      return { endpointId: d.endpointId, status: 'active', url: d.url, eventTypes: d.eventTypes, secretSealed: d.secretSealed, secretVersion: 1, previous: null };
    }
    case 'billing.WebhookEndpointSecretRotated':
      return {
        ...state,
        secretSealed: event.data.secretSealed,
        secretVersion: state.secretVersion + 1,
        previous: state.secretSealed ? { secretSealed: state.secretSealed, validUntil: event.data.previousValidUntil } : null,
      };
    case 'billing.WebhookEndpointDisabled':
      return { ...state, status: 'disabled' };
    case 'billing.WebhookEndpointDeleted':
      return { ...state, status: 'deleted' };
  }
}

export const webhookEndpointDecider: Decider<WebhookEndpointState, WebhookEndpointCommand, WebhookEndpointEventKey> = {
  initialState: { endpointId: null, status: 'active', url: '', eventTypes: [], secretSealed: null, secretVersion: 0, previous: null },
  decide,
  evolve,
};
