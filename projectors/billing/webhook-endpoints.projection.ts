/**
 * `webhook_endpoints`: integrators' endpoints as the admin API lists them and
 * the delivery worker routes to them — URL, subscribed types, status, the
 * secret's version. Never the secret (it stays sealed in the log).
 */
import type { StoredEvent } from '../../contracts/envelope.js';
import type { WebhookEndpointTable } from '../../schema/database.js';
import { foldRows, storedById, type RowStep } from '../runtime/batch-fold.js';
import type { Projection } from '../runtime/projection.js';
import { tokenArrayColumn, upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';

const COLUMNS: UnnestColumn<WebhookEndpointTable>[] = [
  ...(['id', 'url', 'description', 'status', 'disabled_reason'] as const).map((name) => ({ name, arrayType: 'text[]', value: (r: WebhookEndpointTable) => r[name] })),
  tokenArrayColumn<WebhookEndpointTable>('event_types', (r) => r.event_types),
  { name: 'secret_version', arrayType: 'integer[]', value: (r) => r.secret_version },
  ...(['created_at', 'secret_rotated_at', 'disabled_at', 'deleted_at'] as const).map((name) => ({ name, arrayType: 'timestamptz[]', value: (r: WebhookEndpointTable) => r[name] })),
  { name: 'last_seq', arrayType: 'bigint[]', value: (r) => r.last_seq },
];

function step(event: StoredEvent): RowStep<WebhookEndpointTable> {
  const seq = event.seq;
  switch (event.type) {
    case 'billing.WebhookEndpointCreated': {
      const d = event.data;
      const create: WebhookEndpointTable = {
        id: d.endpointId,
        url: d.url,
        event_types: d.eventTypes,
        description: d.description,
        status: 'active',
        disabled_reason: null,
        secret_version: 1,
        created_at: d.createdAt,
        secret_rotated_at: null,
        disabled_at: null,
        deleted_at: null,
        last_seq: seq,
      };
      return { id: d.endpointId, create };
    }
    case 'billing.WebhookEndpointSecretRotated': {
      const { rotatedAt } = event.data;
      return { id: event.data.endpointId, update: (r) => ({ ...r, secret_version: r.secret_version + 1, secret_rotated_at: rotatedAt, last_seq: seq }) };
    }
    case 'billing.WebhookEndpointDisabled': {
      const { reason, disabledAt } = event.data;
      return { id: event.data.endpointId, update: (r) => ({ ...r, status: 'disabled', disabled_reason: reason, disabled_at: disabledAt, last_seq: seq }) };
    }
    case 'billing.WebhookEndpointDeleted': {
      const { deletedAt } = event.data;
      return { id: event.data.endpointId, update: (r) => ({ ...r, status: 'deleted', deleted_at: deletedAt, last_seq: seq }) };
    }
    default:
      return undefined;
  }
}

export const WEBHOOK_ENDPOINTS_PROJECTOR = 'webhook-endpoints';

export const webhookEndpointsProjection: Projection = {
  name: WEBHOOK_ENDPOINTS_PROJECTOR,
  context: 'billing',
  tables: ['webhook_endpoints'],
  filter: (names) => names.aggregateSubjects('billing', 'webhook-endpoint'),
  async apply(trx, events) {
    const rows = await foldRows(events, step, storedById<WebhookEndpointTable>(trx, 'webhook_endpoints'));
    await upsertUnnest(trx, 'webhook_endpoints', COLUMNS, rows, ['id']);
  },
};
