/** The HTTP API (fastify): routes, access control, validation, the error format, OpenAPI and request metrics. */
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import type { ReadinessReport } from '../../infra/readiness.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import type { Database } from '../../schema/database.js';
import type { StripeWebhooks } from '../billing/providers/stripe-webhooks.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import type { Fleet } from '../fleet/fleet.js';
import type { Subscriptions } from '../fleet/subscriptions.js';
import type { Identity } from '../identity/identity.js';
import type { Messaging } from '../messaging/messaging.js';
import type { Plans } from '../plans/plans.js';
import type { Webhooks } from '../billing/webhooks.js';
import type { Billing } from '../billing/billing.js';
import type { Seller } from '../billing/invoice-pdf.js';
import type { Coupons } from '../billing/coupons.js';
import type { PaymentMethods } from '../billing/payment-methods.js';
import type { Sites } from '../edge/sites.js';
import type { Exports } from '../analytics/exports.js';
import { authentication } from './authenticate.js';
import { cardDataGuard } from './card-data-guard.js';
import { declareContract } from './contract.js';
import { clientErrorHandler, errorHandler } from './errors.js';
import { requestTracing } from './request-tracing.js';
import { accountRoutes } from './routes/account.js';
import { adminUserRoutes } from './routes/admin-users.js';
import { authRoutes } from './routes/auth.js';
import { couponRoutes } from './routes/billing-coupons.js';
import { paymentMethodRoutes } from './routes/billing-payment-methods.js';
import { stripeWebhookRoutes } from './routes/billing-stripe-webhook.js';
import { connectionRoutes } from './routes/connections.js';
import { contactRoutes } from './routes/contacts.js';
import { deviceRoutes } from './routes/devices.js';
import { fleetNodeRoutes } from './routes/fleet-nodes.js';
import { fleetProfileRoutes } from './routes/fleet-profiles.js';
import { fleetRolloutRoutes } from './routes/fleet-rollouts.js';
import { groupRoutes } from './routes/groups.js';
import { healthRoutes } from './routes/health.js';
import { planRoutes } from './routes/plans.js';
import { subscriptionRoutes } from './routes/subscription.js';
import { usageRoutes } from './routes/usage.js';
import { userRoutes } from './routes/users.js';
import { webhookRoutes } from './routes/webhooks.js';
import { billingRoutes } from './routes/billing.js';
import { adminBillingRoutes } from './routes/admin-billing.js';
import { siteRoutes } from './routes/sites.js';
import { analyticsRoutes } from './routes/analytics.js';
import { buildValidator } from './validation.js';

export interface ApiDeps {
  handler: CommandHandler;
  identity: Identity;
  messaging: Messaging;
  fleet: Fleet;
  subscriptions: Subscriptions;
  plans: Plans;
  webhooks: Webhooks;
  billing: Billing;
  /** Who issues the invoices (RG_BILLING_SELLER_*): the PDFs' seller block. */
  seller: Seller;
  coupons: Coupons;
  /** Users' saved payment methods (docs/billing-payment-methods.md). */
  paymentMethods: PaymentMethods;
  /** Edge sites (docs/edge.md#sites). */
  sites: Sites;
  /** Analytics export jobs (docs/analytics.md#exports). */
  exports: Exports;
  /** Stripe's incoming webhooks; absent when Stripe is not configured (RG_STRIPE_*), and so is the route. */
  stripeWebhooks?: StripeWebhooks;
  db: Kysely<Database>;
  watcher: CheckpointWatcher;
  metrics: Metrics;
  log: Logger;
  readiness: () => Promise<ReadinessReport>;
  /** How long a read waits for `x-min-sequence` before answering 503. */
  readTimeoutMs?: number;
  /** Which X-Forwarded-For entries to believe (RG_TRUST_PROXY). */
  trustProxy?: boolean | number | string;
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const logger: FastifyBaseLogger = deps.log;
  const app = Fastify({
    loggerInstance: logger,
    // Request metrics cover what per-request log lines would; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    // A hop count trusts the entries the N nearest proxies appended (proxy-addr calls with the hop index).
    trustProxy: typeof deps.trustProxy === 'number' ? ((hops) => (_address: string, hop: number) => hop < hops)(deps.trustProxy) : (deps.trustProxy ?? false),
    ajv: { customOptions: { allErrors: false, removeAdditional: false } },
    schemaController: { compilersFactory: { buildValidator } },
    // What fastify refuses before any route runs answers in our error shape too.
    frameworkErrors: errorHandler,
    clientErrorHandler,
  });
  app.setErrorHandler(errorHandler);
  // Draining: close() waits for requests in flight, and a keep-alive connection would then stay
  // open for fastify's 72 s keep-alive timeout; an answer sent while closing ends its connection.
  let closing = false;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  app.addHook('onSend', async (_request, reply, payload) => {
    if (closing) void reply.header('connection', 'close');
    return payload;
  });
  // Response schemas document; they do not filter (producers/api/contract.ts).
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ code: 'not_found', message: `no route ${request.method} ${request.url}` });
  });
  app.addHook('onResponse', (request, reply, done) => {
    deps.metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });
  void app.register(swagger, {
    openapi: {
      info: { title: 'Relaygrid API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'an access JWT, or an API key rgk_…' } } },
      security: [{ bearer: [] }],
    },
  });
  // Routes register inside a plugin so the OpenAPI generator sees every one of them.
  void app.register((scoped, _opts, done) => {
    declareContract(scoped);
    requestTracing(scoped);
    authentication(scoped, deps.identity.auth);
    // Before any billing route: a card number in a body is refused before validation or a handler sees it.
    cardDataGuard(scoped);
    scoped.get('/docs', { config: { access: 'public' }, schema: { hide: true } }, () => app.swagger());
    healthRoutes(scoped, deps);
    authRoutes(scoped, deps);
    accountRoutes(scoped, deps);
    adminUserRoutes(scoped, deps);
    userRoutes(scoped, deps);
    deviceRoutes(scoped, deps);
    contactRoutes(scoped, deps);
    groupRoutes(scoped, deps);
    fleetNodeRoutes(scoped, deps);
    fleetProfileRoutes(scoped, deps);
    fleetRolloutRoutes(scoped, deps);
    usageRoutes(scoped, deps);
    connectionRoutes(scoped, deps);
    subscriptionRoutes(scoped, deps);
    planRoutes(scoped, deps);
    webhookRoutes(scoped, deps);
    billingRoutes(scoped, deps);
    adminBillingRoutes(scoped, deps);
    couponRoutes(scoped, deps);
    paymentMethodRoutes(scoped, deps);
    stripeWebhookRoutes(scoped, deps);
    siteRoutes(scoped, deps);
    analyticsRoutes(scoped, deps);
    done();
  });
  return app;
}
