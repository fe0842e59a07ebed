/**
 * The plan catalogue: operators create, change and retire plans; clients read
 * the live ones. Decisions load plans from the log, not the read model, so a
 * plan created a moment ago can be the next plan of another at once.
 */
import type { Selectable } from 'kysely';
import type { PlanTable } from '../../schema/database.js';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import type { Written } from '../messaging/messaging-deps.js';
import { checkPlanId, validatePlanInput, validityOf, type PlanTerms } from './model.js';
import { planDecider, type PlanState } from './plan.decider.js';
import type { PlansDeps } from './plans-deps.js';

/** A plan as answers show it: bytes and money as decimal strings (JSON numbers lose precision past 2^53). */
export interface PlanView {
  planId: string;
  name: string;
  allowanceBytes: string | null;
  resetStrategy: string;
  validity: { kind: string; days?: number; timeoutDays?: number };
  ipLimit: number | null;
  nodeLabels: string[];
  inboundKinds: string[];
  price: { amountMinor: number; currency: string };
  /** Per GiB above the allowance (soft overage), in minor units of price.currency; null: not charged. */
  overagePriceMinor: number | null;
  nextPlanId: string | null;
  overage: string;
  retired: boolean;
  sequence: number;
}

export type PlanRow = Omit<Selectable<PlanTable>, 'allowance_bytes' | 'price_minor' | 'overage_price_minor'> & { allowance_bytes: string | null; price_minor: string; overage_price_minor: string | null };

export function planView(row: PlanRow): PlanView {
  const validity = validityOf(row.validity_kind, row.validity_days, row.on_hold_timeout_days);
  return {
    planId: row.id,
    name: row.name,
    allowanceBytes: row.allowance_bytes,
    resetStrategy: row.reset_strategy,
    validity,
    ipLimit: row.ip_limit,
    nodeLabels: row.node_labels,
    inboundKinds: row.inbound_kinds,
    price: { amountMinor: Number(row.price_minor), currency: row.currency },
    overagePriceMinor: row.overage_price_minor === null ? null : Number(row.overage_price_minor),
    nextPlanId: row.next_plan_id,
    overage: row.overage,
    retired: row.retired,
    sequence: row.last_seq,
  };
}

export class Catalogue {
  constructor(private readonly d: PlansDeps) {}

  /** A plan as the log has it now; refuses a missing one. */
  async current(planId: string): Promise<PlanState & { terms: PlanTerms }> {
    const { state } = await this.d.load(planDecider, 'plan', checkPlanId(planId));
    if (!state.planId || !state.terms) throw new DomainError('plan_not_found', `no plan ${planId}`);
    return { ...state, terms: state.terms };
  }

  private async checkNext(terms: PlanTerms): Promise<void> {
    if (terms.nextPlanId === null) return;
    const { state } = await this.d.load(planDecider, 'plan', terms.nextPlanId);
    if (!state.planId) throw new DomainError('invalid_plan', `nextPlanId: no plan ${terms.nextPlanId}`, { field: 'nextPlanId' });
    if (state.retired) throw new DomainError('invalid_plan', `nextPlanId: plan ${terms.nextPlanId} is retired`, { field: 'nextPlanId' });
  }

  async create(input: Record<string, unknown>, actor: Actor, now = new Date()): Promise<Written & { planId: string }> {
    const planId = checkPlanId(input['planId']);
    const { name, terms } = validatePlanInput(input);
    await this.checkNext(terms);
    const { seq } = await this.d.decide(planDecider, 'plan', planId, { type: 'CreatePlan', planId, name, terms, at: now }, actor);
    return { seq, planId };
  }

  /** Replaces name and terms; subscribers take them at their next period. */
  async update(planId: string, input: Record<string, unknown>, actor: Actor, now = new Date()): Promise<Written> {
    checkPlanId(planId, 'id');
    const { name, terms } = validatePlanInput(input);
    await this.checkNext(terms);
    const { seq } = await this.d.decide(planDecider, 'plan', planId, { type: 'UpdatePlan', planId, name, terms, at: now }, actor);
    return { seq };
  }

  async retire(planId: string, actor: Actor, now = new Date()): Promise<Written> {
    checkPlanId(planId, 'id');
    const { seq } = await this.d.decide(planDecider, 'plan', planId, { type: 'RetirePlan', planId, by: actor.actor, at: now }, actor);
    return { seq };
  }

  /** Every column, the 64-bit ones as text: schema/db.ts refuses int8 values past 2^53 rather than round them. */
  private select() {
    return this.d.db
      .selectFrom('plans')
      .select(['id', 'name', 'reset_strategy', 'validity_kind', 'validity_days', 'on_hold_timeout_days', 'ip_limit', 'node_labels', 'inbound_kinds', 'currency', 'next_plan_id', 'overage', 'retired', 'created_at', 'updated_at', 'last_seq'])
      .select((eb) => [eb.cast<string | null>('allowance_bytes', 'text').as('allowance_bytes'), eb.cast<string>('price_minor', 'text').as('price_minor'), eb.cast<string | null>('overage_price_minor', 'text').as('overage_price_minor')]);
  }

  async list(opts: { includeRetired?: boolean } = {}): Promise<PlanView[]> {
    let query = this.select().orderBy('id');
    if (!opts.includeRetired) query = query.where('retired', '=', false);
    return (await query.execute()).map(planView);
  }

  async view(planId: string): Promise<PlanView> {
    const row = await this.select().where('id', '=', planId).executeTakeFirst();
    if (!row) throw new DomainError('plan_not_found', `no plan ${planId}`);
    return planView(row);
  }
}
