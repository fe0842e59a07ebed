/** Outgoing webhooks, the pure parts: the endpoint decider, the mapping table, ids, signing and verification, the target policy, the retry schedule. */
import { describe, expect, it } from 'vitest';
import { Webhook } from 'standardwebhooks';
import { SCHEMA_FILES } from '../../contracts/catalogue.generated.js';
import type { DomainEvent } from '../../contracts/envelope.js';
import { webhookEndpointDecider, type WebhookEndpointEventKey } from '../../producers/billing/webhook-endpoint.decider.js';
import { WEBHOOK_EVENTS, WEBHOOK_TYPES, webhookContexts, webhookPayload, webhookRowOf } from '../../producers/billing/webhook-events.js';
import { newSigningSecret, signWebhook, webhookIdOf } from '../../producers/billing/webhook-signing.js';
import { checkWebhookUrl, guardedLookup, isPrivateAddress, TargetNotAllowedError } from '../../producers/billing/webhook-url.js';
import { verifyWebhook, WebhookVerifyError } from '../../producers/billing/webhook-verify.js';
import { DomainError, fold } from '../../producers/decider.js';
import { MAX_ATTEMPTS, nextAttemptAt, RETRY_DELAYS_MS } from '../../workers/billing/webhook-retries.js';
import { given } from '../support/decider-spec.js';

const at = new Date('2026-12-07T10:00:00Z');
const sealed = Buffer.from('sealed-secret');

describe('webhook endpoint decider', () => {
  const created: DomainEvent<WebhookEndpointEventKey> = {
    type: 'billing.WebhookEndpointCreated',
    data: { endpointId: 'e1', url: 'https://hooks.example.org/rg', eventTypes: ['order.paid'], description: null, secretSealed: sealed, by: 'user:admin', createdAt: at },
  };
  const create = { type: 'Create' as const, endpointId: 'e1', url: 'https://hooks.example.org/rg', eventTypes: ['order.paid'], description: null, secretSealed: sealed, by: 'user:admin', at };

  it('creates once', () => {
    given(webhookEndpointDecider).when(create).then([created]);
    given(webhookEndpointDecider, [created]).when(create).thenError('webhook_endpoint_exists');
  });

  it('rotates the secret, keeping the old one until the grace instant', () => {
    const until = new Date(at.getTime() + 86_400_000);
    const next = Buffer.from('next');
    const rotated: DomainEvent<WebhookEndpointEventKey> = { type: 'billing.WebhookEndpointSecretRotated', data: { endpointId: 'e1', secretSealed: next, previousValidUntil: until, by: 'user:admin', rotatedAt: at } };
    given(webhookEndpointDecider, [created]).when({ type: 'RotateSecret', secretSealed: next, previousValidUntil: until, by: 'user:admin', at }).then([rotated]);
    const state = fold(webhookEndpointDecider, webhookEndpointDecider.initialState, [created, rotated]);
    expect(state).toMatchObject({ secretSealed: next, secretVersion: 2, previous: { secretSealed: sealed, validUntil: until } });
  });

  it('is disabled once by a 410, and a deleted endpoint is like none', () => {
    const disable = { type: 'Disable' as const, reason: 'gone', webhookId: 'msg_1', by: 'system:webhooks', at };
    const disabled: DomainEvent<WebhookEndpointEventKey> = { type: 'billing.WebhookEndpointDisabled', data: { endpointId: 'e1', reason: 'gone', webhookId: 'msg_1', by: 'system:webhooks', disabledAt: at } };
    given(webhookEndpointDecider, [created]).when(disable).then([disabled]);
    given(webhookEndpointDecider, [created, disabled]).when(disable).then([]);
    const deleted: DomainEvent<WebhookEndpointEventKey> = { type: 'billing.WebhookEndpointDeleted', data: { endpointId: 'e1', by: 'user:admin', deletedAt: at } };
    given(webhookEndpointDecider, [created]).when({ type: 'Delete', by: 'user:admin', at }).then([deleted]);
    for (const command of [disable, { type: 'Delete' as const, by: 'user:admin', at }, { type: 'RotateSecret' as const, secretSealed: sealed, previousValidUntil: at, by: 'user:admin', at }]) {
      given(webhookEndpointDecider, [created, deleted]).when(command).thenError('webhook_endpoint_not_found');
      given(webhookEndpointDecider).when(command).thenError('webhook_endpoint_not_found');
    }
  });
});

describe('the mapping table', () => {
  const schemas = new Set(SCHEMA_FILES.map((f) => `${f.context}.${f.name}`));
  const current = (key: string) => [...SCHEMA_FILES].filter((f) => `${f.context}.${f.name}` === key).sort((a, b) => b.version - a.version)[0];

  it('covers the types the issue asks for, and reads only context streams', () => {
    expect(WEBHOOK_TYPES).toEqual(expect.arrayContaining(['order.paid', 'invoice.finalized', 'invoice.payment_failed', 'subscription.renewed', 'subscription.past_due', 'subscription.limited']));
    expect(webhookContexts().sort()).toEqual(['billing', 'plans']);
  });

  it('maps only events of the catalogue, copying plain fields that the event has: none is bytes, none is missing', () => {
    let checked = 0;
    for (const [key, row] of Object.entries(WEBHOOK_EVENTS)) {
      expect(schemas.has(key), `${key} is in the catalogue`).toBe(true);
      if (!schemas.has(key)) continue;
      const fields = new Map((current(key)!.schema as unknown as { fields: { name: string; type: unknown }[] }).fields.map((f) => [f.name, JSON.stringify(f.type)]));
      for (const field of row.fields) {
        expect(fields.has(field), `${key}.${field}`).toBe(true);
        expect(fields.get(field), `${key}.${field} is bytes`).not.toMatch(/"bytes"/);
      }
      checked++;
    }
    expect(checked).toBe(Object.keys(WEBHOOK_EVENTS).length);
    expect(webhookRowOf('plans.SubscriptionStarted')).toBeUndefined();
    expect(webhookRowOf('constructor')).toBeUndefined();
  });

  it('builds the Standard Webhooks payload: times as RFC 3339, bytes as decimal strings, money as integers, nothing unlisted', () => {
    const limited = { time: at, data: { userId: 'u1', periodStart: new Date('2026-12-01T00:00:00Z'), cause: 'allowance_spent', usedBytes: 2n ** 60n, limitedAt: at, email: 'someone@example.org' } };
    expect(webhookPayload(limited as never, WEBHOOK_EVENTS['plans.SubscriptionLimited']!, 'u1')).toEqual({
      type: 'subscription.limited',
      timestamp: at.toISOString(),
      data: { userId: 'u1', periodStart: '2026-12-01T00:00:00.000Z', cause: 'allowance_spent', usedBytes: String(2n ** 60n), limitedAt: at.toISOString() },
    });
    const paid = { time: at, data: { provider: 'manual', amountMinor: 499n, currency: 'EUR', paidAt: at, providerToken: Buffer.from('x') } };
    expect(webhookPayload(paid as never, WEBHOOK_EVENTS['billing.OrderPaid']!, 'ord_1').data).toEqual({ orderId: 'ord_1', provider: 'manual', amountMinor: 499, currency: 'EUR', paidAt: at.toISOString() });
  });
});

describe('webhook ids and signatures', () => {
  it('derives the id from the cause and the endpoint', () => {
    expect(webhookIdOf('evt-1', 'e1')).toBe(webhookIdOf('evt-1', 'e1'));
    expect(webhookIdOf('evt-1', 'e1')).toMatch(/^msg_[A-Za-z0-9_-]{22}$/);
    expect(webhookIdOf('evt-1', 'e2')).not.toBe(webhookIdOf('evt-1', 'e1'));
    expect(webhookIdOf('evt-2', 'e1')).not.toBe(webhookIdOf('evt-1', 'e1'));
  });

  const secret = newSigningSecret();
  const body = JSON.stringify({ type: 'subscription.limited', timestamp: at.toISOString(), data: { userId: 'u1' } });
  const headers = signWebhook([secret], 'msg_1', at, body);

  it('signs id.timestamp.body as v1,<base64 HMAC-SHA256>, as the package verifies it', () => {
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(headers).toMatchObject({ 'webhook-id': 'msg_1', 'webhook-timestamp': String(at.getTime() / 1000) });
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/);
    // The package's own verify, on the system clock: a message signed now.
    const now = new Date();
    expect(new Webhook(secret).verify(body, signWebhook([secret], 'msg_1', now, body))).toMatchObject({ type: 'subscription.limited' });
  });

  it('verifyWebhook: a fresh webhook passes; a tampered body, another secret, a replay with its old timestamp and a future one are refused', () => {
    const failure = (fn: () => unknown) => {
      try {
        fn();
      } catch (err) {
        expect(err).toBeInstanceOf(WebhookVerifyError);
        return (err as WebhookVerifyError).code;
      }
      return 'accepted';
    };
    expect(verifyWebhook(secret, headers, body, { now: new Date(at.getTime() + 60_000) })).toMatchObject({ id: 'msg_1', type: 'subscription.limited', payload: { data: { userId: 'u1' } } });
    expect(failure(() => verifyWebhook(secret, headers, body.replace('u1', 'u2'), { now: at }))).toBe('invalid_signature');
    expect(failure(() => verifyWebhook(newSigningSecret(), headers, body, { now: at }))).toBe('invalid_signature');
    // The same message (same id, same signed timestamp) replayed ten minutes later.
    expect(failure(() => verifyWebhook(secret, headers, body, { now: new Date(at.getTime() + 600_000) }))).toBe('timestamp_too_old');
    expect(failure(() => verifyWebhook(secret, headers, body, { now: new Date(at.getTime() + 600_000), toleranceSeconds: 900 }))).toBe('accepted');
    expect(failure(() => verifyWebhook(secret, headers, body, { now: new Date(at.getTime() - 600_000) }))).toBe('timestamp_too_new');
    // A fresh timestamp pasted onto the old signature does not verify: the timestamp is signed.
    expect(failure(() => verifyWebhook(secret, { ...headers, 'webhook-timestamp': String(at.getTime() / 1000 + 600) }, body, { now: new Date(at.getTime() + 600_000) }))).toBe('invalid_signature');
    expect(failure(() => verifyWebhook(secret, { 'webhook-id': 'msg_1' }, body, { now: at }))).toBe('missing_headers');
    // Header names in any case, as Node's http and fetch's Headers give them.
    expect(failure(() => verifyWebhook(secret, new Headers(headers), body, { now: at }))).toBe('accepted');
  });

  it('during a rotation, signs with both secrets: either verifies', () => {
    const next = newSigningSecret();
    const both = signWebhook([next, secret], 'msg_2', at, body);
    expect(both['webhook-signature'].split(' ')).toHaveLength(2);
    expect(verifyWebhook(next, both, body, { now: at }).id).toBe('msg_2');
    expect(verifyWebhook(secret, both, body, { now: at }).id).toBe('msg_2');
  });
});

describe('where webhooks may go', () => {
  const strict = { allowPrivate: false };
  const code = (url: unknown, policy = strict) => {
    try {
      return checkWebhookUrl(url, policy);
    } catch (err) {
      expect(err).toBeInstanceOf(DomainError);
      return (err as DomainError).code;
    }
  };

  it('takes http(s) URLs without credentials or fragments', () => {
    expect(code('https://hooks.example.org/relaygrid?x=1')).toBe('https://hooks.example.org/relaygrid?x=1');
    expect(code('http://93.184.216.34:8080/')).toBe('http://93.184.216.34:8080/');
    for (const bad of ['ftp://example.org/', 'file:///etc/passwd', 'not a url', '', 42, 'https://user:pw@example.org/', 'https://example.org/#x', `https://example.org/${'a'.repeat(2100)}`]) {
      expect(code(bad), String(bad)).toBe('invalid_webhook_url');
    }
  });

  it('refuses loopback, private, link-local and localhost targets by default, however the address is spelled', () => {
    for (const url of ['http://127.0.0.1/', 'http://127.1/', 'http://2130706433/', 'http://0x7f000001/', 'http://[::1]/', 'http://[::ffff:127.0.0.1]/', 'http://10.1.2.3/', 'http://172.16.0.1/', 'http://192.168.1.1/', 'http://169.254.169.254/latest/meta-data', 'http://100.64.0.1/', 'http://[fd00::1]/', 'http://[fe80::1]/', 'http://0.0.0.0/', 'http://localhost:8080/', 'http://api.localhost/']) {
      expect(code(url), url).toBe('webhook_target_not_allowed');
    }
    expect(code('http://127.0.0.1:9/', { allowPrivate: true })).toBe('http://127.0.0.1:9/');
    expect(isPrivateAddress('8.8.8.8')).toBe(false);
    expect(isPrivateAddress('2606:4700::1111')).toBe(false);
  });

  it('refuses at connection time a name that resolves to a private address (rebinding included)', async () => {
    const resolve = (policy: { allowPrivate: boolean }) =>
      new Promise<unknown>((done) => guardedLookup(policy)('localhost', { family: 4 }, (err, address) => done(err ?? address)));
    expect(await resolve(strict)).toBeInstanceOf(TargetNotAllowedError);
    expect(await resolve({ allowPrivate: true })).toBe('127.0.0.1');
  });
});

describe('the retry schedule', () => {
  it('is Standard Webhooks\': 8 attempts over about a day, each wait within ±10 %', () => {
    expect(MAX_ATTEMPTS).toBe(8);
    const total = RETRY_DELAYS_MS.reduce((a, b) => a + b, 0);
    expect(total / 3_600_000).toBeCloseTo(27.58, 1);
    expect(nextAttemptAt(1, at, () => 0.5)).toEqual(new Date(at.getTime() + 5_000));
    expect(nextAttemptAt(2, at, () => 0)).toEqual(new Date(at.getTime() + 270_000));
    expect(nextAttemptAt(2, at, () => 1)).toEqual(new Date(at.getTime() + 330_000));
    expect(nextAttemptAt(7, at, () => 0.5)).toEqual(new Date(at.getTime() + 36_000_000));
    expect(nextAttemptAt(8, at)).toBeNull();
  });
});
