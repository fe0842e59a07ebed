/**
 * An operator's write on an order answers with the order as the read models
 * show it once they have applied the write (and, for a fulfilled order, its
 * invoice), like the API's admin billing routes: the next `billing order` or
 * `billing.invoices.list` then sees it. Too slow a projector: 503
 * read_model_behind, and the write still stands.
 */
import type { Billing } from '../../producers/billing/billing.js';
import type { OrderView } from '../../producers/billing/billing-queries.js';
import { invoiceDecider } from '../../producers/billing/invoice.decider.js';
import { orderDecider } from '../../producers/billing/order.decider.js';
import { waitForSequence } from '../../producers/api/read-your-writes.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { INVOICES_PROJECTOR } from '../../projectors/billing/invoices.projection.js';
import { ORDERS_PROJECTOR } from '../../projectors/billing/orders.projection.js';

/** The watcher of this process's read models, and how long a write waits for them (default 5 s). */
export interface ProjectionWait {
  watcher: CheckpointWatcher;
  readTimeoutMs?: number;
}

export async function projectedOrder(billing: Billing, wait: ProjectionWait, orderId: string): Promise<OrderView> {
  const { seq, state } = await billing.deps.load(orderDecider, 'order', orderId);
  if (state.fulfilled) await waitForSequence(wait, INVOICES_PROJECTOR, (await billing.deps.load(invoiceDecider, 'invoice', state.fulfilled.invoiceId)).seq);
  await waitForSequence(wait, ORDERS_PROJECTOR, seq);
  return { ...(await billing.queries.order(orderId)), sequence: seq };
}
