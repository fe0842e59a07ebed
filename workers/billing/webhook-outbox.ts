/**
 * Feeds the webhook outbox from the log: one projection per context stream
 * the mapping table reads (producers/billing/webhook-events.ts), run by the
 * projector runtime — its durable checkpoint, one leader by advisory lock,
 * each batch's rows committed with the checkpoint in one transaction, and a
 * stop (not a skip) on an event it cannot decode.
 *
 * Each mapped event queues one delivery per active endpoint subscribed to its
 * type that existed when the event happened, under the webhook id derived
 * from the event and the endpoint: a cause seen again (redelivered, replayed
 * from an older checkpoint, republished) inserts nothing. The feeders are not
 * in the projector catalogue on purpose: a rebuild would send everything
 * again.
 */
import type { EventContext } from '../../contracts/catalogue.js';
import type { Names } from '../../infra/naming.js';
import { webhookPayload, webhookRowOf } from '../../producers/billing/webhook-events.js';
import { webhookIdOf } from '../../producers/billing/webhook-signing.js';
import type { Projection } from '../../projectors/runtime/projection.js';
import { upsertUnnest, type UnnestColumn } from '../../projectors/runtime/unnest.js';
import type { WebhookDeliveryTable } from '../../schema/database.js';
import type { Clock } from '../scheduler/clock.js';

type Queued = Omit<WebhookDeliveryTable, 'attempts' | 'last_status_code' | 'final_reason' | 'finished_at'>;

const text = (name: keyof Queued): UnnestColumn<Queued> => ({ name, arrayType: 'text[]', value: (r) => r[name] });
const COLUMNS: UnnestColumn<Queued>[] = [
  ...(['webhook_id', 'endpoint_id', 'event_type', 'cause_event_id', 'cause_type', 'cause_stream', 'payload', 'status'] as const).map(text),
  { name: 'cause_seq', arrayType: 'bigint[]', value: (r) => r.cause_seq },
  { name: 'next_attempt_at', arrayType: 'timestamptz[]', value: (r) => r.next_attempt_at },
  { name: 'created_at', arrayType: 'timestamptz[]', value: (r) => r.created_at },
];

export const outboxProjectorName = (context: EventContext) => `webhooks-outbox-${context}`;

export function outboxProjection(context: EventContext, names: Names, clock: Clock): Projection {
  const stream = names.stream(context);
  return {
    name: outboxProjectorName(context),
    context,
    tables: ['webhook_deliveries'],
    filter: (n) => n.contextSubjects(context),
    async apply(trx, events) {
      const mapped = events.flatMap((event) => {
        const row = webhookRowOf(event.type);
        return row ? [{ event, row }] : [];
      });
      if (mapped.length === 0) return;
      const endpoints = await trx.selectFrom('webhook_endpoints').select(['id', 'event_types', 'created_at']).where('status', '=', 'active').execute();
      const now = clock.now();
      const queued = new Map<string, Queued>();
      for (const { event, row } of mapped) {
        const aggregateId = event.subject.slice(event.subject.lastIndexOf('.') + 1);
        let payload: string | undefined;
        for (const endpoint of endpoints) {
          // An endpoint receives what happens from its creation on, not the history before it.
          if (!endpoint.event_types.includes(row.type) || endpoint.created_at.getTime() > event.time.getTime()) continue;
          payload ??= JSON.stringify(webhookPayload(event, row, aggregateId));
          const webhookId = webhookIdOf(event.id, endpoint.id);
          queued.set(webhookId, {
            webhook_id: webhookId,
            endpoint_id: endpoint.id,
            event_type: row.type,
            cause_event_id: event.id,
            cause_type: event.type,
            cause_stream: stream,
            cause_seq: event.seq,
            payload,
            status: 'pending',
            next_attempt_at: now,
            created_at: now,
          });
        }
      }
      await upsertUnnest(trx, 'webhook_deliveries', COLUMNS, [...queued.values()], ['webhook_id'], 'nothing');
    },
  };
}
