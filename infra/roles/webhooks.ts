/** Outgoing webhooks on this process's connections (docs/billing-webhooks.md): the admin API's service and the fleet worker's delivery worker. */
import type { CommandHandler } from '../../producers/event-store/command-handler.js';
import { Webhooks } from '../../producers/billing/webhooks.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { startWebhookDelivery, type WebhookDelivery, type WebhookDeliveryOptions } from '../../workers/billing/webhook-delivery.js';
import { requireMasterKey } from '../config.js';
import type { Runtime } from '../runtime.js';
import { projectorDeps } from './projectors.js';

/** Needs RG_MASTER_KEY: the signing secrets are sealed under a key derived from it. */
export function openWebhooks(rt: Runtime, handler: CommandHandler): Webhooks {
  return new Webhooks({ handler, db: rt.db, masterKey: requireMasterKey(rt.config), policy: { allowPrivate: rt.config.webhooks.allowPrivateTargets } });
}

export function startWebhookWorker(
  rt: Runtime,
  handler: CommandHandler,
  watcher: Pick<CheckpointWatcher, 'onMove'>,
  opts: Omit<WebhookDeliveryOptions, 'projector' | 'watcher' | 'timeoutMs'> & { timeoutMs?: number } = {},
): Promise<WebhookDelivery> {
  return startWebhookDelivery(openWebhooks(rt, handler), { projector: projectorDeps(rt), watcher, timeoutMs: rt.config.webhooks.timeoutMs, ...opts });
}
