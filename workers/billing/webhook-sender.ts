/**
 * One webhook POST: the signed headers and the exact body, no redirects
 * followed (a 3xx is a failed attempt), an answer within `timeoutMs` or a
 * failure, and every connection made to an address the target policy allows
 * (producers/billing/webhook-url.ts). Only the status code is kept of the
 * answer; its body is read (up to 64 KiB) and dropped.
 */
import http from 'node:http';
import https from 'node:https';
import { DomainError } from '../../producers/decider.js';
import type { WebhookHeaders } from '../../producers/billing/webhook-signing.js';
import { checkWebhookUrl, guardedLookup, TargetNotAllowedError, type TargetPolicy } from '../../producers/billing/webhook-url.js';

export type SendFailure = 'timeout' | 'connection' | 'target_not_allowed';

export type SendResult = { statusCode: number; latencyMs: number } | { failure: SendFailure; detail: string; latencyMs: number };

const DRAIN_LIMIT = 64 * 1024;
const USER_AGENT = 'Relaygrid-Webhooks/1';

class TimeoutError extends Error {}

export function postWebhook(url: string, headers: WebhookHeaders, body: string, opts: { timeoutMs: number; policy: TargetPolicy }): Promise<SendResult> {
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  try {
    // Again at every attempt: the policy may have changed since the endpoint was created, and a literal address is never looked up.
    checkWebhookUrl(url, opts.policy);
  } catch (err) {
    if (err instanceof DomainError) return Promise.resolve({ failure: 'target_not_allowed', detail: err.message, latencyMs: 0 });
    throw err;
  }
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  return new Promise((resolve) => {
    const req = client.request(target, {
      method: 'POST',
      agent: false,
      lookup: guardedLookup(opts.policy),
      headers: { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'user-agent': USER_AGENT },
    });
    const timer = setTimeout(() => req.destroy(new TimeoutError(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
    req.on('response', (res) => {
      clearTimeout(timer);
      resolve({ statusCode: res.statusCode ?? 0, latencyMs: elapsed() });
      let read = 0;
      res.on('data', (chunk: Buffer) => {
        read += chunk.length;
        if (read > DRAIN_LIMIT) res.destroy();
      });
      res.on('error', () => undefined);
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      const failure: SendFailure = err instanceof TimeoutError ? 'timeout' : err instanceof TargetNotAllowedError ? 'target_not_allowed' : 'connection';
      resolve({ failure, detail: err.message, latencyMs: elapsed() });
    });
    req.end(body);
  });
}
