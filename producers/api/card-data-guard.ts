/**
 * Card numbers never enter Relaygrid: a client tokenizes the card with the
 * payment provider and sends the provider's token. A body sent to a billing
 * route that holds something shaped like a card number anyway (a client that
 * put the number in the token field, say) is refused before validation,
 * before any handler, store or log sees it — so it is never recorded, and the
 * answer never echoes it.
 *
 * "Shaped like a card number": 13 to 19 digits, typed as people type them
 * (single spaces or dashes between digits allowed), that pass the Luhn check.
 * Every string in the body is scanned, numbers as their decimal text, object
 * keys too, at any depth.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DomainError } from '../decider.js';

export const CARD_DATA_MESSAGE = 'this API never takes card numbers: tokenize the card with the payment provider and send its token';

/** The routes the guard covers. */
const GUARDED_PREFIX = '/v1/billing/';

const MIN_DIGITS = 13;
const MAX_DIGITS = 19;

/**
 * A run of digit groups: digits with at most one space or dash between
 * neighbours ("4242 4242 4242 4242", "4242-4242-4242-4242", "4242424242424242").
 */
const RUN = /\d+(?:[ -]\d+)*/g;

/**
 * UUIDs are ids, not cards: 32 hex digits in dashed groups, whose all-decimal
 * stretches would otherwise make a Luhn-valid run now and then. A card cannot
 * hide inside one (its groups together are longer than any card number).
 */
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;

export function luhnValid(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/**
 * Whether `text` holds a card number. Within a run, every stretch of whole
 * groups is tried, so a number typed with what follows it ("4242 4242 4242
 * 4242 12/30") is still found; one unbroken run of more than 19 digits is not
 * a card number.
 */
export function hasCardNumber(text: string): boolean {
  for (const [run] of text.replace(UUID, ' ').matchAll(RUN)) {
    const groups = run.split(/[ -]/);
    for (let start = 0; start < groups.length; start++) {
      let digits = '';
      for (let end = start; end < groups.length; end++) {
        digits += groups[end];
        if (digits.length > MAX_DIGITS) break;
        if (digits.length >= MIN_DIGITS && luhnValid(digits)) return true;
      }
    }
  }
  return false;
}

/**
 * Walks a parsed JSON body without recursion (a 64 KiB body can nest deeper
 * than the call stack). Bytes (a route that keeps its raw body, as Stripe's
 * signed webhook does) are not JSON text and are left to their route.
 */
export function bodyHasCardNumber(body: unknown): boolean {
  const pending: unknown[] = [body];
  while (pending.length > 0) {
    const value = pending.pop();
    if (typeof value === 'string') {
      if (hasCardNumber(value)) return true;
    } else if (typeof value === 'number' || typeof value === 'bigint') {
      if (hasCardNumber(value.toString())) return true;
    } else if (Array.isArray(value)) {
      for (const item of value as unknown[]) pending.push(item);
    } else if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value) && !ArrayBuffer.isView(value)) {
      for (const [key, inner] of Object.entries(value)) {
        if (hasCardNumber(key)) return true;
        pending.push(inner);
      }
    }
  }
  return false;
}

function guarded(request: FastifyRequest): boolean {
  // The route's pattern when one matched (what the router decided), else the URL as sent.
  return (request.routeOptions.url ?? request.url).startsWith(GUARDED_PREFIX) || request.url.startsWith(GUARDED_PREFIX);
}

/** Installs the guard on every route of `app` (and its children) under /v1/billing/. */
export function cardDataGuard(app: FastifyInstance): void {
  app.addHook('preValidation', (request, _reply, done) => {
    // The error carries no field and no value: the message is fixed, and the error handler logs no body.
    if (guarded(request) && bodyHasCardNumber(request.body)) done(new DomainError('card_data_not_allowed', CARD_DATA_MESSAGE));
    else done();
  });
}
