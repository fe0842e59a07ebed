/**
 * Integrators' webhook endpoints (docs/billing-webhooks.md): create one (its
 * signing secret is answered once, then only sealed in the log), list them,
 * read an endpoint's delivery log, rotate its secret, delete it; and, for the
 * delivery worker, disable one whose receiver answered 410 Gone and open the
 * secrets that sign its deliveries. The secret is sealed under a key derived
 * from the master key and opened only here, from the log: no read model, log
 * line or error holds it.
 */
import type { Kysely, Selectable } from 'kysely';
import { uuidv7 } from '../../contracts/ids.js';
import type { Database, WebhookAttemptTable, WebhookDeliveryTable, WebhookEndpointTable } from '../../schema/database.js';
import { ContextDeps } from '../context-deps.js';
import { DomainError } from '../decider.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import { deriveKey, open, seal } from '../identity/crypto/sealing.js';
import type { Actor } from '../identity/identity-deps.js';
import { webhookEndpointDecider, type WebhookEndpointCommand } from './webhook-endpoint.decider.js';
import { WEBHOOK_TYPES } from './webhook-events.js';
import { newSigningSecret } from './webhook-signing.js';
import { checkWebhookUrl, type TargetPolicy } from './webhook-url.js';

/** After a rotation the old secret signs alongside the new one this long, so receivers switch without losing a delivery. */
export const ROTATION_GRACE_MS = 24 * 3_600_000;
const MAX_EVENT_TYPES = WEBHOOK_TYPES.length;
const MAX_DESCRIPTION = 200;
const WORKER = { actor: 'system:webhooks' } as const satisfies Actor;

export interface WebhookEndpointView {
  id: string;
  url: string;
  eventTypes: string[];
  description: string | null;
  status: 'active' | 'disabled';
  disabledReason: string | null;
  createdAt: string;
  secretRotatedAt: string | null;
  disabledAt: string | null;
}

export interface WebhookAttemptView {
  attempt: number;
  startedAt: string;
  /** Null while in flight, or when the worker stopped before recording the answer. */
  finishedAt: string | null;
  statusCode: number | null;
  latencyMs: number | null;
  error: string | null;
}

export interface WebhookDeliveryView {
  webhookId: string;
  eventType: string;
  causeEventId: string;
  status: 'pending' | 'delivered' | 'failed' | 'cancelled';
  attempts: WebhookAttemptView[];
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
  finalReason: string | null;
  createdAt: string;
  finishedAt: string | null;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function endpointView(r: Selectable<WebhookEndpointTable>): WebhookEndpointView {
  return {
    id: r.id,
    url: r.url,
    eventTypes: r.event_types,
    description: r.description,
    status: r.status === 'disabled' ? 'disabled' : 'active',
    disabledReason: r.disabled_reason,
    createdAt: r.created_at.toISOString(),
    secretRotatedAt: iso(r.secret_rotated_at),
    disabledAt: iso(r.disabled_at),
  };
}

function attemptView(a: Selectable<WebhookAttemptTable>): WebhookAttemptView {
  return { attempt: a.attempt, startedAt: a.started_at.toISOString(), finishedAt: iso(a.finished_at), statusCode: a.status_code, latencyMs: a.latency_ms, error: a.error };
}

function deliveryView(d: Selectable<WebhookDeliveryTable>, attempts: WebhookAttemptView[]): WebhookDeliveryView {
  return {
    webhookId: d.webhook_id,
    eventType: d.event_type,
    causeEventId: d.cause_event_id,
    status: d.status as WebhookDeliveryView['status'],
    attempts,
    nextAttemptAt: iso(d.next_attempt_at),
    lastStatusCode: d.last_status_code,
    finalReason: d.final_reason,
    createdAt: d.created_at.toISOString(),
    finishedAt: iso(d.finished_at),
  };
}

function checkEventTypes(raw: unknown): string[] {
  const invalid = (why: string) => new DomainError('invalid_webhook', `eventTypes: ${why}`, { field: 'eventTypes' });
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > MAX_EVENT_TYPES) throw invalid(`must list 1-${MAX_EVENT_TYPES} of ${WEBHOOK_TYPES.join(', ')}`);
  for (const type of raw) if (typeof type !== 'string' || !WEBHOOK_TYPES.includes(type)) throw invalid(`"${String(type)}" is not one of ${WEBHOOK_TYPES.join(', ')}`);
  return [...new Set(raw as string[])];
}

function checkDescription(raw: unknown): string | null {
  if (raw === undefined || raw === null) return null;
  if (typeof raw !== 'string' || raw.length > MAX_DESCRIPTION) throw new DomainError('invalid_webhook', `description: at most ${MAX_DESCRIPTION} characters`, { field: 'description' });
  return raw;
}

interface OpenedSecrets {
  version: number;
  current: string;
  previous: { secret: string; validUntil: Date } | null;
}

export class Webhooks {
  readonly deps: ContextDeps<'webhook-endpoint'>;
  readonly policy: TargetPolicy;
  private readonly key: Buffer;
  /** Opened secrets by endpoint, with the version they are of: a rotation shows as a newer version in the read model. */
  private readonly opened = new Map<string, OpenedSecrets>();

  constructor(opts: { handler: CommandHandler; db: Kysely<Database>; masterKey: Buffer; policy: TargetPolicy }) {
    this.deps = new ContextDeps('billing', opts.handler, opts.db);
    this.key = deriveKey(opts.masterKey, 'billing-webhook-secrets');
    this.policy = opts.policy;
  }

  private decide(endpointId: string, command: WebhookEndpointCommand, actor: Actor) {
    return this.deps.decide(webhookEndpointDecider, 'webhook-endpoint', endpointId, command, actor);
  }

  /** A new endpoint and its signing secret: the only time the secret is answered. */
  async create(input: { url?: unknown; eventTypes?: unknown; description?: unknown }, actor: Actor, now = new Date()): Promise<{ seq: number; id: string; secret: string }> {
    const url = checkWebhookUrl(input.url, this.policy);
    const eventTypes = checkEventTypes(input.eventTypes);
    const description = checkDescription(input.description);
    const id = uuidv7(now.getTime());
    const secret = newSigningSecret();
    const { seq } = await this.deps.handler.handle(
      webhookEndpointDecider,
      this.deps.subject('webhook-endpoint', id),
      { type: 'Create', endpointId: id, url, eventTypes, description, secretSealed: seal(this.key, id, secret), by: actor.actor ?? 'unknown', at: now },
      { meta: this.deps.meta(actor), assumeNew: true },
    );
    return { seq, id, secret };
  }

  /** A new secret, answered once; the old one keeps signing too for ROTATION_GRACE_MS. */
  async rotateSecret(id: string, actor: Actor, now = new Date()): Promise<{ seq: number; secret: string }> {
    const secret = newSigningSecret();
    const command: WebhookEndpointCommand = { type: 'RotateSecret', secretSealed: seal(this.key, id, secret), previousValidUntil: new Date(now.getTime() + ROTATION_GRACE_MS), by: actor.actor ?? 'unknown', at: now };
    const { seq } = await this.decide(id, command, actor);
    return { seq, secret };
  }

  async delete(id: string, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    return { seq: (await this.decide(id, { type: 'Delete', by: actor.actor ?? 'unknown', at: now }, actor)).seq };
  }

  /** The worker: the receiver answered 410 Gone. A second call records nothing. */
  async disable(id: string, reason: string, webhookId: string | null, now = new Date()): Promise<{ seq: number }> {
    return { seq: (await this.decide(id, { type: 'Disable', reason, webhookId, by: WORKER.actor, at: now }, WORKER)).seq };
  }

  private async row(id: string): Promise<Selectable<WebhookEndpointTable>> {
    const row = await this.deps.db.selectFrom('webhook_endpoints').selectAll().where('id', '=', id).where('status', '!=', 'deleted').executeTakeFirst();
    if (!row) throw new DomainError('webhook_endpoint_not_found', 'no such webhook endpoint');
    return row;
  }

  async view(id: string): Promise<WebhookEndpointView> {
    return endpointView(await this.row(id));
  }

  /** Every endpoint but deleted ones, oldest first. */
  async list(): Promise<WebhookEndpointView[]> {
    const rows = await this.deps.db.selectFrom('webhook_endpoints').selectAll().where('status', '!=', 'deleted').orderBy('created_at').orderBy('id').execute();
    return rows.map(endpointView);
  }

  /** An endpoint's delivery log, newest first, each delivery with its attempts. */
  async deliveries(id: string, limit: number): Promise<WebhookDeliveryView[]> {
    await this.row(id);
    const db = this.deps.db;
    const rows = await db.selectFrom('webhook_deliveries').selectAll().where('endpoint_id', '=', id).orderBy('created_at', 'desc').orderBy('webhook_id', 'desc').limit(limit).execute();
    if (rows.length === 0) return [];
    const attempts = await db.selectFrom('webhook_attempts').selectAll().where('webhook_id', 'in', rows.map((r) => r.webhook_id)).orderBy('attempt').execute();
    const byDelivery = new Map<string, WebhookAttemptView[]>();
    for (const a of attempts) byDelivery.set(a.webhook_id, [...(byDelivery.get(a.webhook_id) ?? []), attemptView(a)]);
    return rows.map((r) => deliveryView(r, byDelivery.get(r.webhook_id) ?? []));
  }

  /**
   * The secrets that sign a delivery at `now`: the current one, and the
   * previous one during a rotation's grace. `version` is the read model's;
   * the cache is refreshed from the log when it is newer.
   */
  async signingSecrets(id: string, version: number, now: Date): Promise<string[]> {
    let opened = this.opened.get(id);
    if (!opened || opened.version < version) {
      const { state } = await this.deps.load(webhookEndpointDecider, 'webhook-endpoint', id);
      if (!state.secretSealed) throw new DomainError('webhook_endpoint_not_found', 'no such webhook endpoint');
      const openOne = (sealed: Uint8Array) => open(this.key, id, sealed).toString('utf8');
      opened = {
        version: state.secretVersion,
        current: openOne(state.secretSealed),
        previous: state.previous ? { secret: openOne(state.previous.secretSealed), validUntil: state.previous.validUntil } : null,
      };
      this.opened.set(id, opened);
    }
    return opened.previous && opened.previous.validUntil.getTime() > now.getTime() ? [opened.current, opened.previous.secret] : [opened.current];
  }
}
