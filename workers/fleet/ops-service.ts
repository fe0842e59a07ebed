/**
 * `relaygrid-ops`: the operators' NATS micro service, visible to `nats micro ls`
 * and callable with `nats req`:
 *
 *   nats req rg.ops.rollout.plan   '{"reason":"new profile"}'
 *   nats req rg.ops.rollout.pause  '{"rolloutId":"…"}'   (also resume, abort, rollback)
 *   nats req rg.ops.rollout.status '{"rolloutId":"…"}'
 *   nats req rg.ops.rollouts ''      nats req rg.ops.nodes ''
 *
 * and the plans context (docs/plans.md), the same operations as the API and
 * `relaygrid plans`:
 *
 *   nats req rg.ops.plans ''                       (every plan, retired ones too)
 *   nats req rg.ops.plan.create '{"planId":"pro","name":"Pro","price":{"amountMinor":999,"currency":"EUR"}}'
 *   nats req rg.ops.plan.update '{"planId":"pro","name":"Pro",…}'   nats req rg.ops.plan.retire '{"planId":"pro"}'
 *   nats req rg.ops.subscription.get   '{"userId":"…"}'
 *   nats req rg.ops.subscription.start '{"userId":"…","planId":"pro"}'
 *   nats req rg.ops.subscription.grant '{"userId":"…","bytes":"1073741824","grantId":"promo-1"}'
 *   nats req rg.ops.subscription.disable '{"userId":"…","reason":"chargeback"}'   (also enable)
 *
 * and billing (docs/billing-operators.md), the same operations as the admin
 * billing API and `relaygrid billing`:
 *
 *   nats req rg.ops.billing.orders.list    '{"status":"pending","userId":"…","limit":20}'
 *   nats req rg.ops.billing.orders.get     '{"orderId":"ord_…"}'
 *   nats req rg.ops.billing.orders.confirm '{"orderId":"ord_…","reference":"SEPA-4711"}'
 *   nats req rg.ops.billing.orders.cancel  '{"orderId":"ord_…","reason":"never paid"}'
 *   nats req rg.ops.billing.orders.refund  '{"orderId":"ord_…","idempotencyKey":"…","amountMinor":500}'
 *   nats req rg.ops.billing.invoices.list  '{"number":"2026-EUR-000001"}'   nats req rg.ops.billing.invoices.get '{"invoiceId":"inv_…"}'
 *   nats req rg.ops.billing.revenue        '{"from":"2026-12-01","to":"2027-01-01"}'
 *
 * Answers are JSON; a refusal is a micro error (Nats-Service-Error-Code 400,
 * 404 or 409, and the stable code in Nats-Service-Error) with a JSON body.
 * The actor in the events is `nats:<user>` for a console user's request
 * (the NATS user nats-server authenticated, ops-actor.ts); from inside the
 * RELAYGRID account it is `operator:<by>` when the request gives `by`, else
 * `operator:nats`.
 */
import { Svcm, type Service, type ServiceMsg } from '@nats-io/services';
import type { Logger } from '../../infra/logger.js';
import type { FleetDeps } from '../../producers/fleet/fleet-deps.js';
import type { Rollouts } from '../../producers/fleet/rollouts.js';
import { refusal } from './refusal.js';
import { actorOf } from './ops-actor.js';
import { required, type OpsHandler } from './ops-request.js';
import type { BillingOps } from '../billing/billing-ops.js';
import type { FleetViews } from '../../producers/fleet/views.js';
import type { Plans } from '../../producers/plans/plans.js';

export class OpsService {
  private service?: Service;

  constructor(
    private readonly d: FleetDeps,
    private readonly rollouts: Rollouts,
    private readonly views: FleetViews,
    private readonly plans: Plans,
    private readonly billing: BillingOps,
    private readonly log: Logger,
  ) {}

  async start(version: string): Promise<void> {
    // The services package carries its own nats-core typings; the connection is the same object.
    const svcm = new Svcm(this.d.nats.nc as unknown as ConstructorParameters<typeof Svcm>[0]);
    this.service = await svcm.add({ name: 'relaygrid-ops', version, description: `Relaygrid fleet operations (${this.d.names.namespace})`, metadata: { namespace: this.d.names.namespace } });
    const { views } = this;
    const rolloutId = (body: Record<string, unknown>) => required(body['rolloutId'], 'rolloutId');
    const operate = (type: 'Pause' | 'Resume' | 'Abort' | 'RollBack'): OpsHandler => (body, by) => this.rollouts.operate(type, rolloutId(body), { actor: by });
    const rollout = this.service.addGroup(`${this.d.names.opsGroup}.rollout`);
    this.endpoint(rollout, 'plan', (body, by) => this.rollouts.plan({ reason: typeof body['reason'] === 'string' ? body['reason'] : 'planned over NATS' }, { actor: by }));
    this.endpoint(rollout, 'pause', operate('Pause'));
    this.endpoint(rollout, 'resume', operate('Resume'));
    this.endpoint(rollout, 'abort', operate('Abort'));
    this.endpoint(rollout, 'rollback', operate('RollBack'));
    this.endpoint(rollout, 'status', (body) => views.rollout(rolloutId(body)));
    const top = this.service.addGroup(this.d.names.opsGroup);
    this.endpoint(top, 'rollouts', () => views.rollouts());
    this.endpoint(top, 'nodes', () => views.nodes());
    this.plansEndpoints(this.service, top);
    // `<ops>.billing.orders.confirm`…: one group per part of billing, endpoints as billing-ops.ts names them.
    for (const [part, endpoints] of Object.entries(this.billing)) {
      const group = this.service.addGroup([this.d.names.opsGroup, 'billing', part].filter(Boolean).join('.'));
      for (const [name, handler] of Object.entries(endpoints)) this.endpoint(group, name, handler);
    }
  }

  private plansEndpoints(service: Service, top: ReturnType<Service['addGroup']>): void {
    const { catalogue, subscriptions } = this.plans;
    const actor = (by: string) => ({ actor: by });
    // Writes answer with their event's sequence (x-min-sequence for a read that must see them), like the API.
    const planAnswer = (planId: string, written: { seq: number }) => ({ planId, sequence: written.seq });
    const userAnswer = (userId: string, written: { seq: number }) => ({ userId, sequence: written.seq });
    this.endpoint(top, 'plans', () => catalogue.list({ includeRetired: true }));
    const plan = service.addGroup(`${this.d.names.opsGroup}.plan`);
    this.endpoint(plan, 'create', async (body, by) => {
      const written = await catalogue.create(body, actor(by));
      return planAnswer(written.planId, written);
    });
    this.endpoint(plan, 'update', async (body, by) => {
      const { planId, ...terms } = body;
      return planAnswer(required(planId, 'planId'), await catalogue.update(required(planId, 'planId'), terms, actor(by)));
    });
    this.endpoint(plan, 'retire', async (body, by) => planAnswer(required(body['planId'], 'planId'), await catalogue.retire(required(body['planId'], 'planId'), actor(by))));
    const subscription = service.addGroup(`${this.d.names.opsGroup}.subscription`);
    const userOf = (body: Record<string, unknown>) => required(body['userId'], 'userId');
    this.endpoint(subscription, 'get', (body) => subscriptions.view(userOf(body)));
    this.endpoint(subscription, 'start', async (body, by) => userAnswer(userOf(body), await subscriptions.start(userOf(body), body, actor(by))));
    this.endpoint(subscription, 'grant', async (body, by) => {
      const written = await subscriptions.grant(userOf(body), body, actor(by));
      return { ...userAnswer(userOf(body), written), grantId: written.grantId };
    });
    this.endpoint(subscription, 'disable', async (body, by) => userAnswer(userOf(body), await subscriptions.disable(userOf(body), required(body['reason'], 'reason'), actor(by))));
    this.endpoint(subscription, 'enable', async (body, by) => userAnswer(userOf(body), await subscriptions.enable(userOf(body), typeof body['reason'] === 'string' && body['reason'] !== '' ? body['reason'] : 'enabled by an operator', actor(by))));
  }

  async stop(): Promise<void> {
    await this.service?.stop();
  }

  private endpoint(group: ReturnType<Service['addGroup']>, name: string, handler: OpsHandler): void {
    group.addEndpoint(name, {
      handler: (err, msg) => {
        if (err) return this.log.warn({ err }, 'ops endpoint failed');
        void this.answer(msg, handler);
      },
    });
  }

  private async answer(msg: ServiceMsg, handler: OpsHandler): Promise<void> {
    try {
      const body = msg.data.length > 0 ? (JSON.parse(msg.string()) as Record<string, unknown>) : {};
      msg.respond(JSON.stringify(await handler(body, actorOf(msg.headers, body))));
    } catch (err) {
      const { status, code, message } = refusal(err);
      if (code === 'internal') this.log.error({ err }, 'ops request failed');
      msg.respondError(status, code, JSON.stringify({ code, message }));
    }
  }
}
