/**
 * Every 4xx answers `{code, message, field?}` with a stable `code`, and the
 * message names the field or the rule, so clients can branch on the code and
 * people can read the message.
 */
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { DomainError } from '../decider.js';
import { ConcurrencyConflictError } from '../event-store/errors.js';
import { InvalidSubjectTokenError } from '../../infra/naming.js';
import { AuthError } from '../identity/auth-error.js';

export interface ErrorBody {
  code: string;
  message: string;
  field?: string;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

/** The HTTP status of each domain rule; anything not listed is 422 (a rule of the domain said no). */
const DOMAIN_STATUS: Record<string, number> = {
  email_taken: 409,
  user_exists: 409,
  totp_already_enabled: 409,
  user_not_found: 404,
  api_key_not_found: 404,
  session_not_found: 404,
  user_forgotten: 410,
  wrong_password: 403,
  invalid_token: 400,
  token_expired: 400,
  invalid_totp: 400,
  totp_not_started: 409,
  last_admin: 409,
  cannot_suspend_self: 409,
  // messaging (docs/messaging.md)
  invalid_key: 400,
  cannot_target_self: 400,
  device_not_found: 404,
  group_not_found: 404,
  not_group_admin: 403,
  device_exists: 409,
  group_exists: 409,
  device_limit_reached: 409,
  prekey_limit_reached: 409,
  contact_limit_reached: 409,
  block_limit_reached: 409,
  group_full: 409,
  // fleet (docs/fleet.md)
  invalid_profile: 400,
  invalid_node: 400,
  invalid_waves: 400,
  invalid_enrollment_token: 401,
  node_not_found: 404,
  profile_not_found: 404,
  rollout_not_found: 404,
  node_exists: 409,
  profile_exists: 409,
  rollout_exists: 409,
  node_retired: 409,
  invalid_rollout_state: 409,
  nothing_to_roll_out: 409,
  port_conflict: 409,
  read_model_behind: 503,
  // plans (docs/plans.md)
  invalid_plan: 400,
  invalid_grant: 400,
  invalid_subscription: 400,
  invalid_time_zone: 400,
  plan_not_found: 404,
  subscription_not_found: 404,
  plan_exists: 409,
  plan_retired: 409,
  grant_conflict: 409,
  subscription_expired: 409,
  period_not_over: 409,
  not_expired: 409,
  hold_not_over: 409,
  // billing webhooks (docs/billing-webhooks.md)
  invalid_webhook: 400,
  invalid_webhook_url: 400,
  webhook_target_not_allowed: 400,
  webhook_endpoint_not_found: 404,
  webhook_endpoint_exists: 409,
  // billing coupons (docs/billing-coupons.md)
  invalid_coupon: 400,
  coupon_not_found: 404,
  coupon_exists: 409,
  coupon_disabled: 409,
  coupon_expired: 409,
  coupon_exhausted: 409,
  coupon_currency_mismatch: 409,
  // billing: payment providers (docs/billing.md#stripe)
  invalid_signature: 400,
  invalid_json: 400,
  invalid_payment_method: 400,
  payment_provider_unavailable: 503,
  // billing: payment methods (docs/billing-payment-methods.md)
  payment_method_expired: 400,
  card_data_not_allowed: 400,
  payment_method_not_found: 404,
  payment_method_limit: 409,
  // billing: checkout, orders, invoices (docs/billing.md)
  idempotency_key_required: 400,
  invalid_quote: 400,
  invalid_checkout: 400,
  invalid_confirmation: 400,
  invalid_refund: 400,
  invalid_extension: 400,
  amount_mismatch: 400,
  order_not_found: 404,
  invoice_not_found: 404,
  credit_note_not_found: 404,
  idempotency_key_reused: 422,
  order_already_paid: 409,
  order_cancelled: 409,
  order_not_cancellable: 409,
  order_not_refundable: 409,
  order_not_manual: 409,
  order_not_paid: 409,
  invoice_not_payable: 409,
  invoice_not_voidable: 409,
  invoice_not_paid: 409,
  subscription_changed: 409,
  currency_mismatch: 409,
  payment_provider_not_configured: 503,
  no_paid_subscription: 409,
  plan_unchanged: 409,
  renewal_already_ordered: 409,
  // edge sites (docs/edge.md#sites)
  invalid_site: 400,
  site_not_found: 404,
  domain_taken: 409,
  site_exists: 409,
  // analytics (docs/analytics.md)
  invalid_export: 400,
  forbidden_export: 403,
  invalid_link: 403,
  export_not_found: 404,
  export_link_expired: 410,
  // NATS requests (the ops micro service, agents) answer with the same statuses
  invalid_request: 400,
  invalid_querystring: 400,
  invalid_tick: 400,
  invalid_report: 400,
  invalid_cursor: 400,
};

/**
 * What fastify and its parsers refuse before a route runs, under codes of our
 * own: fastify's `FST_ERR_*` names are its internals, and some of its
 * messages echo the path (which may hold a token).
 */
const FRAMEWORK: Record<string, { code: string; message?: string }> = {
  FST_ERR_CTP_INVALID_JSON_BODY: { code: 'invalid_json', message: 'the body is not valid JSON' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { code: 'invalid_json', message: 'the body is empty but content-type is application/json' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { code: 'invalid_content_length' },
  FST_ERR_CTP_BODY_TOO_LARGE: { code: 'body_too_large' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { code: 'unsupported_media_type', message: 'send the body as application/json' },
  FST_ERR_MAX_PARAM_LENGTH: { code: 'path_too_long', message: 'a path parameter is too long' },
  FST_ERR_BAD_URL: { code: 'invalid_url', message: 'the path is not a valid URL' },
  FST_ERR_INVALID_URL: { code: 'invalid_url', message: 'the path is not a valid URL' },
  FST_ERR_NOT_FOUND: { code: 'not_found' },
};

/** Any other 4xx fastify gives, by status, so every code stays one the docs list. */
const BY_STATUS: Record<number, string> = {
  400: 'bad_request',
  404: 'not_found',
  408: 'request_timeout',
  413: 'body_too_large',
  414: 'path_too_long',
  415: 'unsupported_media_type',
  431: 'headers_too_large',
};

function frameworkError(err: FastifyError): { status: number; body: ErrorBody } | undefined {
  const status = err.statusCode;
  if (typeof status !== 'number' || status < 400 || status >= 500) return undefined;
  const known = err.code ? FRAMEWORK[err.code] : undefined;
  // secure-json-parse's own refusals (a __proto__ key) are SyntaxErrors without a code.
  const code = known?.code ?? (err instanceof SyntaxError ? 'invalid_json' : (BY_STATUS[status] ?? 'bad_request'));
  return { status, body: { code, message: known?.message ?? (err instanceof SyntaxError ? 'the body is not valid JSON' : err.message) } };
}

interface ValidationItem {
  instancePath: string;
  message?: string;
  params: Record<string, unknown>;
}

function fieldOf(item: ValidationItem): string {
  const missing = item.params['missingProperty'];
  const extra = item.params['additionalProperty'];
  const path = item.instancePath.replace(/^\//, '').replace(/\//g, '.');
  const leaf = typeof missing === 'string' ? missing : typeof extra === 'string' ? extra : '';
  return [path, leaf].filter(Boolean).join('.') || '(body)';
}

export function toErrorResponse(err: unknown): { status: number; body: ErrorBody } {
  const validation = (err as FastifyError).validation as ValidationItem[] | undefined;
  if (validation?.[0]) {
    const item = validation[0];
    const field = fieldOf(item);
    const context = (err as FastifyError).validationContext ?? 'body';
    const code = context === 'body' ? 'invalid_body' : `invalid_${context}`;
    const rule = item.params['additionalProperty'] ? 'is not a known field' : (item.message ?? 'is invalid');
    return { status: 400, body: { code, message: `${field}: ${rule}`, field } };
  }
  if (err instanceof HttpError) {
    return { status: err.status, body: { code: err.code, message: err.message, ...(err.field ? { field: err.field } : {}) } };
  }
  if (err instanceof DomainError) {
    const field = err.details['field'];
    return { status: DOMAIN_STATUS[err.code] ?? 422, body: { code: err.code, message: err.message, ...(typeof field === 'string' ? { field } : {}) } };
  }
  if (err instanceof AuthError) return { status: err.status, body: { code: err.code, message: err.message } };
  if (err instanceof ConcurrencyConflictError) return { status: 409, body: { code: err.code, message: err.message } };
  if (err instanceof InvalidSubjectTokenError) return { status: 400, body: { code: err.code, message: err.message } };
  const framework = frameworkError(err as FastifyError);
  if (framework) return framework;
  return { status: 500, body: { code: 'internal', message: 'internal error' } };
}

export function errorHandler(err: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { status, body } = toErrorResponse(err);
  if (err instanceof AuthError && err.retryAfter) void reply.header('retry-after', String(err.retryAfter));
  if (status >= 500) request.log.error({ err }, 'request failed');
  void reply.status(status).send(body);
}

/** What Node's HTTP parser refuses (no request exists yet): the same shape, written on the socket. */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', 'the request took too long to arrive']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'the request headers are too large']
        : [400, 'bad_request', 'the request is not valid HTTP'];
  const body = JSON.stringify({ code, message });
  if (socket.writable) socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n${body}`);
  socket.destroy(err);
}
