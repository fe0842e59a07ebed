/** The API role: the fastify server on RG_API_PORT. */
import type { FastifyInstance } from 'fastify';
import { buildApi } from '../../producers/api/app.js';
import type { PaymentSink } from '../../producers/billing/providers/payment-sink.js';
import { StripeWebhooks } from '../../producers/billing/providers/stripe-webhooks.js';
import { ContextDeps } from '../../producers/context-deps.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import type { Fleet } from '../../producers/fleet/fleet.js';
import { openFleet } from './fleet.js';
import { Subscriptions } from '../../producers/fleet/subscriptions.js';
import { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import type { ProjectorStatus } from '../../projectors/runtime/projector.js';
import { readinessProbe, type ReadinessReport } from '../readiness.js';
import { requireMasterKey } from '../config.js';
import { Identity } from '../../producers/identity/identity.js';
import { Messaging } from '../../producers/messaging/messaging.js';
import { Plans } from '../../producers/plans/plans.js';
import type { Webhooks } from '../../producers/billing/webhooks.js';
import { Coupons } from '../../producers/billing/coupons.js';
import { openWebhooks } from './webhooks.js';
import type { Billing } from '../../producers/billing/billing.js';
import type { PaymentMethods } from '../../producers/billing/payment-methods.js';
import { openBilling, openPaymentMethods, openProviders } from './billing.js';
import { Sites } from '../../producers/edge/sites.js';
import { Exports } from '../../producers/analytics/exports.js';
import type { EdgeAggregate } from '../../producers/edge/site-names.js';
import { proveEvent } from '../../replay/audit/prove.js';
import type { Runtime } from '../runtime.js';

export interface RunningApi {
  app: FastifyInstance;
  identity: Identity;
  messaging: Messaging;
  fleet: Fleet;
  plans: Plans;
  webhooks: Webhooks;
  billing: Billing;
  coupons: Coupons;
  paymentMethods: PaymentMethods;
  sites: Sites;
  url: string;
  close(): Promise<void>;
}

export interface ApiOptions {
  /** The process's readiness (`serve` covers every role in it); else NATS, Postgres, Redis and these projectors. */
  readiness?: () => Promise<ReadinessReport>;
  projectorStatus?: () => ProjectorStatus[];
  host?: string;
  readTimeoutMs?: number;
  /** Where Stripe's webhooks record payments: billing's payments by default; tests may pass a recorder. */
  paymentSink?: PaymentSink;
}

/** The identity context on this process's connections; needs RG_MASTER_KEY. */
export function openIdentity(rt: Runtime, handler = new CommandHandler(new EventStore(rt.nats, rt.names, rt.registry), { metrics: rt.metrics })): Identity {
  return new Identity({ handler, db: rt.db, redis: rt.redis, nats: rt.nats, masterKey: requireMasterKey(rt.config), auth: rt.config.auth, log: rt.log });
}

export async function startApi(rt: Runtime, opts: ApiOptions = {}): Promise<RunningApi> {
  const handler = new CommandHandler(new EventStore(rt.nats, rt.names, rt.registry), { metrics: rt.metrics });
  const identity = openIdentity(rt, handler);
  await identity.start();
  // Key transparency proofs come from the audit worker's tree (the same tables `replay audit prove` reads).
  const messaging = new Messaging({ handler, db: rt.db, redis: rt.redis, proveEvent: (eventId) => proveEvent(rt, eventId) });
  const watcher = new CheckpointWatcher(rt.config.databaseUrl, rt.db);
  const fleet = openFleet(rt, watcher, handler);
  const subscriptions = new Subscriptions(rt.db, fleet.configs, requireMasterKey(rt.config), rt.log);
  const plans = new Plans({ handler, db: rt.db });
  const webhooks = openWebhooks(rt, handler);
  const coupons = new Coupons(new ContextDeps<'coupon'>('billing', handler, rt.db));
  const providers = openProviders(rt);
  const paymentMethods = openPaymentMethods(rt, handler, providers);
  const billing = openBilling(rt, handler, plans, { providers, coupons, methods: paymentMethods });
  const sites = new Sites(new ContextDeps<EdgeAggregate>('edge', handler, rt.db));
  const exports = new Exports({ db: rt.db, keys: identity.deps.keys, masterKey: requireMasterKey(rt.config), log: rt.log, dir: rt.config.analytics.exportDir, namespace: rt.config.namespace, linkTtlSeconds: rt.config.analytics.exportLinkTtlSeconds });
  const stripe = rt.config.stripe;
  const stripeWebhooks = stripe
    ? new StripeWebhooks(new ContextDeps<'provider-event'>('billing', handler, rt.db), { webhookSecret: stripe.webhookSecret, sink: opts.paymentSink ?? billing.payments, log: rt.log })
    : undefined;
  const app = buildApi({
    handler,
    identity,
    messaging,
    fleet,
    subscriptions,
    plans,
    webhooks,
    billing,
    seller: rt.config.billing.seller,
    coupons,
    paymentMethods,
    sites,
    exports,
    ...(stripeWebhooks ? { stripeWebhooks } : {}),
    trustProxy: rt.config.auth.trustProxy,
    db: rt.db,
    watcher,
    metrics: rt.metrics,
    log: rt.log,
    readiness: opts.readiness ?? readinessProbe({ nats: rt.nats, db: rt.db, redis: rt.redis, projectors: opts.projectorStatus ?? (() => []) }),
    ...(opts.readTimeoutMs ? { readTimeoutMs: opts.readTimeoutMs } : {}),
  });
  const address = await app.listen({ port: rt.config.apiPort, host: opts.host ?? '0.0.0.0' });
  return {
    app,
    identity,
    messaging,
    fleet,
    plans,
    webhooks,
    billing,
    coupons,
    paymentMethods,
    sites,
    url: address.replace('0.0.0.0', '127.0.0.1'),
    close: async () => {
      await app.close();
      await exports.close();
      await watcher.close();
      await identity.stop();
    },
  };
}
