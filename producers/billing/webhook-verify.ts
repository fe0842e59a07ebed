/**
 * For integrators: verify a Relaygrid webhook (Standard Webhooks) before
 * trusting it. It refuses a signature that does not match the exact body
 * bytes, and a replay: a timestamp further than `toleranceSeconds` from now
 * (the timestamp is signed, so an old message cannot be given a new one).
 * Within the tolerance, deduplicate on `webhook-id` (a retry keeps its id).
 *
 * The HMAC is the `standardwebhooks` package's own (`Webhook.sign`).
 * `Webhook.verify` would do the same checks, but with its tolerance fixed at
 * 300 s and the system clock; this takes both as options and compares in
 * constant time like it. Depends on nothing else of Relaygrid: copy it.
 */
import { timingSafeEqual } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

export type WebhookVerifyFailure = 'missing_headers' | 'invalid_timestamp' | 'timestamp_too_old' | 'timestamp_too_new' | 'invalid_signature' | 'invalid_body';

export class WebhookVerifyError extends Error {
  constructor(
    readonly code: WebhookVerifyFailure,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookVerifyError';
  }
}

export interface VerifyOptions {
  /** How far the timestamp may be from now, either way (default 300 s). */
  toleranceSeconds?: number;
  now?: Date;
}

export interface VerifiedWebhook {
  id: string;
  timestamp: Date;
  type: string;
  payload: { type: string; timestamp: string; data: Record<string, unknown> };
}

type Headers = Record<string, string | string[] | undefined> | { get(name: string): string | null };

function header(headers: Headers, name: string): string | undefined {
  if (typeof headers.get === 'function') return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const key = Object.keys(record).find((k) => k.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? value[0] : value;
}

/** The webhook, verified; throws WebhookVerifyError (its `code` says why) otherwise. `body` must be the raw bytes received. */
export function verifyWebhook(secret: string, headers: Headers, body: string | Uint8Array, opts: VerifyOptions = {}): VerifiedWebhook {
  const id = header(headers, 'webhook-id');
  const stamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (!id || !stamp || !signatures) throw new WebhookVerifyError('missing_headers', 'webhook-id, webhook-timestamp and webhook-signature are required');
  if (!/^\d{1,12}$/.test(stamp)) throw new WebhookVerifyError('invalid_timestamp', 'webhook-timestamp is not whole seconds since the epoch');
  const seconds = Number(stamp);
  const now = Math.floor((opts.now ?? new Date()).getTime() / 1000);
  const tolerance = opts.toleranceSeconds ?? 300;
  if (now - seconds > tolerance) throw new WebhookVerifyError('timestamp_too_old', `webhook-timestamp is more than ${tolerance} s old: a replay, or a clock far off`);
  if (seconds - now > tolerance) throw new WebhookVerifyError('timestamp_too_new', `webhook-timestamp is more than ${tolerance} s ahead`);
  const timestamp = new Date(seconds * 1000);
  const expected = Buffer.from(new Webhook(secret).sign(id, timestamp, body));
  const matches = signatures.split(' ').some((candidate) => {
    const given = Buffer.from(candidate);
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw new WebhookVerifyError('invalid_signature', 'no signature matches the body under this secret');
  let payload: VerifiedWebhook['payload'];
  try {
    payload = JSON.parse(typeof body === 'string' ? body : Buffer.from(body).toString('utf8')) as VerifiedWebhook['payload'];
  } catch {
    throw new WebhookVerifyError('invalid_body', 'the body is not JSON');
  }
  return { id, timestamp, type: payload.type, payload };
}
