/**
 * Every aggregate kind and its decider, by `<context>.<aggregate>` as it
 * appears in subjects: what time travel (`replay state`) folds an aggregate's
 * events with.
 */
import type { EventKey } from '../contracts/catalogue.js';
import type { Decider } from './decider.js';
import { apiKeyDecider } from './identity/api-key.decider.js';
import { emailReservationDecider } from './identity/email-reservation.decider.js';
import { sessionDecider } from './identity/session.decider.js';
import { userDecider } from './identity/user.decider.js';
import { nodeDecider } from './fleet/node.decider.js';
import { profileDecider } from './fleet/profile.decider.js';
import { rolloutDecider } from './fleet/rollout.decider.js';
import { contactsDecider } from './messaging/contacts.decider.js';
import { devicesDecider } from './messaging/devices.decider.js';
import { groupDecider } from './messaging/group.decider.js';
import { planDecider } from './plans/plan.decider.js';
import { subscriptionDecider } from './plans/subscription.decider.js';
import { webhookEndpointDecider } from './billing/webhook-endpoint.decider.js';
import { providerEventDecider } from './billing/provider-event.decider.js';
import { couponDecider } from './billing/coupon.decider.js';
import { domainReservationDecider } from './edge/domain-reservation.decider.js';
import { siteDecider } from './edge/site.decider.js';

export const DECIDERS: ReadonlyMap<string, Decider<unknown, never, EventKey>> = new Map<string, Decider<unknown, never, EventKey>>([
  ['identity.user', userDecider],
  ['identity.session', sessionDecider],
  ['identity.apikey', apiKeyDecider],
  ['identity.email', emailReservationDecider],
  ['messaging.devices', devicesDecider],
  ['messaging.contacts', contactsDecider],
  ['messaging.group', groupDecider],
  ['fleet.node', nodeDecider],
  ['fleet.profile', profileDecider],
  ['fleet.rollout', rolloutDecider],
  ['plans.plan', planDecider],
  ['plans.subscription', subscriptionDecider],
  ['billing.webhook-endpoint', webhookEndpointDecider],
  ['billing.provider-event', providerEventDecider],
  ['billing.coupon', couponDecider],
  ['edge.site', siteDecider],
  ['edge.domain', domainReservationDecider],
]);
