/** Every projection the runtime can run, by name (`relaygrid projector <name>`). */
import { apiKeysProjection } from './identity/api-keys.projection.js';
import { proxyCredentialsProjection } from './identity/proxy-credentials.projection.js';
import { usersProjection } from './identity/users.projection.js';
import { contactsProjection } from './messaging/contacts.projection.js';
import { devicesProjection } from './messaging/devices.projection.js';
import { groupsProjection } from './messaging/groups.projection.js';
import type { Projection } from './runtime/projection.js';
import { fleetProjection } from './fleet/fleet.projection.js';
import { plansProjection } from './plans/plans.projection.js';
import { connectionsProjection } from './usage/connections.projection.js';
import { usageProjection } from './usage/usage.projection.js';
import { meteringProjection } from './plans/metering.projection.js';
import { webhookEndpointsProjection } from './billing/webhook-endpoints.projection.js';
import { ordersProjection } from './billing/orders.projection.js';
import { invoicesProjection } from './billing/invoices.projection.js';
import { couponsProjection } from './billing/coupons.projection.js';
import { paymentMethodsProjection } from './billing/payment-methods.projection.js';
import { edgeSitesProjection } from './edge/sites.projection.js';
import { usageAnalyticsProjection } from './analytics/usage-analytics.projection.js';
import { planSpansProjection } from './analytics/plan-spans.projection.js';
import { edgeCertificatesProjection } from './edge/certificates.projection.js';

export const PROJECTIONS: ReadonlyMap<string, Projection> = new Map(
  [usersProjection, proxyCredentialsProjection, apiKeysProjection, devicesProjection, contactsProjection, groupsProjection, fleetProjection, usageProjection, plansProjection, connectionsProjection, meteringProjection, webhookEndpointsProjection, ordersProjection, invoicesProjection, couponsProjection, paymentMethodsProjection, edgeSitesProjection, usageAnalyticsProjection, planSpansProjection, edgeCertificatesProjection].map((p) => [p.name, p]),
);
