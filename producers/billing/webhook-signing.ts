/**
 * The sending half of Standard Webhooks (https://www.standardwebhooks.com):
 * secrets `whsec_<base64 of 32 random bytes>`, ids derived from the cause,
 * and the three headers, signed with the `standardwebhooks` package.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

export const SECRET_PREFIX = 'whsec_';

/** A fresh signing secret, in the format receivers' Standard Webhooks libraries take as is. */
export function newSigningSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

/**
 * The webhook id of one cause event for one endpoint: the same for every
 * attempt, and for the same cause seen again (a redelivered message, a
 * replayed checkpoint), so it is the outbox's unique key and receivers
 * deduplicate on it. Another endpoint gets another id for the same cause.
 */
export function webhookIdOf(causeEventId: string, endpointId: string): string {
  return `msg_${createHash('sha256').update(`${causeEventId}\n${endpointId}`).digest().subarray(0, 16).toString('base64url')}`;
}

export type WebhookHeaders = {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

/**
 * The headers of one attempt: the body's signature under every secret given
 * (the current one, and the previous one during a rotation's grace),
 * space-separated as the standard allows.
 */
export function signWebhook(secrets: readonly string[], webhookId: string, at: Date, body: string): WebhookHeaders {
  if (secrets.length === 0) throw new Error('no signing secret');
  return {
    'webhook-id': webhookId,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((secret) => new Webhook(secret).sign(webhookId, at, body)).join(' '),
  };
}
