/** `orders`: customers' orders as the billing API lists them and operators search them. */
import type { StoredEvent } from '../../contracts/envelope.js';
import type { OrderTable } from '../../schema/database.js';
import { foldRows, storedById, type RowStep } from '../runtime/batch-fold.js';
import type { Projection } from '../runtime/projection.js';
import { upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';
import { pricedColumns, pricedUnnest, typed } from './priced-columns.js';

const COLUMNS: UnnestColumn<OrderTable>[] = [
  ...typed<OrderTable>('text[]', ['id', 'user_id', 'kind', 'plan_id', 'coupon', 'provider', 'payment_method_id', 'status', 'provider_ref', 'instructions', 'failure_reason', 'invoice_id']),
  ...typed<OrderTable>('integer[]', ['months', 'attempts']),
  ...pricedUnnest<OrderTable>(),
  ...typed<OrderTable>('bigint[]', ['refunded_minor', 'last_seq']),
  ...typed<OrderTable>('timestamptz[]', ['next_attempt_at', 'period_start', 'period_end', 'placed_at', 'paid_at', 'fulfilled_at', 'cancelled_at', 'updated_at']),
];

function step(event: StoredEvent): RowStep<OrderTable> {
  const touch = (id: string, update: (row: OrderTable) => Partial<OrderTable>): RowStep<OrderTable> => ({ id, update: (row) => ({ ...row, ...update(row), updated_at: event.time, last_seq: event.seq }) });
  switch (event.type) {
    case 'billing.OrderPlaced': {
      const d = event.data;
      const create: OrderTable = {
        id: d.orderId,
        user_id: d.userId,
        kind: d.kind,
        plan_id: d.planId,
        months: d.months,
        ...pricedColumns(d),
        coupon: d.coupon,
        provider: d.provider,
        payment_method_id: d.paymentMethodId,
        status: 'pending',
        provider_ref: null,
        instructions: null,
        attempts: 0,
        failure_reason: null,
        next_attempt_at: null,
        invoice_id: null,
        period_start: d.periodStart,
        period_end: d.periodEnd,
        refunded_minor: 0,
        placed_at: d.placedAt,
        paid_at: null,
        fulfilled_at: null,
        cancelled_at: null,
        updated_at: event.time,
        last_seq: event.seq,
      };
      return { id: d.orderId, create };
    }
    case 'billing.OrderPaymentPending': {
      const d = event.data;
      return touch(d.orderId, (r) => ({ attempts: Math.max(r.attempts, d.attempt), provider_ref: d.providerRef ?? r.provider_ref, instructions: d.instructions, next_attempt_at: null }));
    }
    case 'billing.OrderPaid': {
      const d = event.data;
      return touch(d.orderId, () => ({ status: 'paid', provider_ref: d.providerRef, paid_at: d.paidAt, next_attempt_at: null, failure_reason: null }));
    }
    case 'billing.OrderPaymentFailed': {
      const d = event.data;
      const retry = d.retryable && d.nextAttemptAt !== null;
      return touch(d.orderId, (r) => ({ attempts: Math.max(r.attempts, d.attempt), status: retry ? 'pending' : 'failed', failure_reason: d.reason, next_attempt_at: retry ? d.nextAttemptAt : null }));
    }
    case 'billing.OrderFulfilled': {
      const d = event.data;
      return touch(d.orderId, () => ({ status: 'fulfilled', invoice_id: d.invoiceId, period_start: d.periodStart, period_end: d.periodEnd, fulfilled_at: d.fulfilledAt }));
    }
    case 'billing.OrderCancelled':
      return touch(event.data.orderId, () => ({ status: 'cancelled', cancelled_at: event.data.cancelledAt, next_attempt_at: null }));
    case 'billing.OrderRefunded': {
      const d = event.data;
      return touch(d.orderId, (r) => {
        const refunded = r.refunded_minor + Number(d.amountMinor);
        return { refunded_minor: refunded, status: refunded >= r.total_minor ? 'refunded' : r.status };
      });
    }
    default:
      return undefined;
  }
}

export const ORDERS_PROJECTOR = 'billing-orders';

export const ordersProjection: Projection = {
  name: ORDERS_PROJECTOR,
  context: 'billing',
  tables: ['orders'],
  filter: (names) => names.aggregateSubjects('billing', 'order'),
  async apply(trx, events) {
    const rows = await foldRows(events, step, storedById<OrderTable>(trx, 'orders'));
    await upsertUnnest(trx, 'orders', COLUMNS, rows, ['id']);
  },
};
