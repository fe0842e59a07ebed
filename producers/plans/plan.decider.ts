/**
 * A plan of the catalogue (`<ns>.evt.plans.plan.<planId>`). Input arrives
 * validated (model.ts) and with its next plan checked against the log
 * (catalogue.ts); the decider owns existence, change and retirement. A change
 * is recorded as the plan's new terms: subscriptions read them at their next
 * period (subscription.decider.ts), so the current period never changes.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import { termsFromFields, termsToFields, type PlanTerms } from './model.js';

export type PlanEventKey = 'plans.PlanCreated' | 'plans.PlanUpdated' | 'plans.PlanRetired';

export interface PlanState {
  planId: string | null;
  name: string;
  terms: PlanTerms | null;
  retired: boolean;
}

export type PlanCommand =
  | { type: 'CreatePlan'; planId: string; name: string; terms: PlanTerms; at: Date }
  | { type: 'UpdatePlan'; planId: string; name: string; terms: PlanTerms; at: Date }
  | { type: 'RetirePlan'; planId: string; by: string; at: Date };

type E = DomainEvent<PlanEventKey>;

const same = (a: PlanTerms, b: PlanTerms) => JSON.stringify(termsToFields(a), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)) === JSON.stringify(termsToFields(b), (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));

function decide(command: PlanCommand, state: PlanState): E[] {
  const { planId, at } = command;
  if (command.type === 'CreatePlan') {
    if (state.planId) throw new DomainError('plan_exists', `plan ${planId} already exists`);
    if (command.terms.nextPlanId === planId) throw new DomainError('invalid_plan', 'nextPlanId: a plan cannot follow itself', { field: 'nextPlanId' });
    return [{ type: 'plans.PlanCreated', data: { planId, name: command.name, ...termsToFields(command.terms), createdAt: at } }];
  }
  if (!state.planId || !state.terms) throw new DomainError('plan_not_found', `no plan ${planId}`);
  if (command.type === 'RetirePlan') return state.retired ? [] : [{ type: 'plans.PlanRetired', data: { planId, by: command.by, retiredAt: at } }];
  if (state.retired) throw new DomainError('plan_retired', `plan ${planId} is retired`);
  if (command.terms.nextPlanId === planId) throw new DomainError('invalid_plan', 'nextPlanId: a plan cannot follow itself', { field: 'nextPlanId' });
  if (command.name === state.name && same(command.terms, state.terms)) return [];
  return [{ type: 'plans.PlanUpdated', data: { planId, name: command.name, ...termsToFields(command.terms), updatedAt: at } }];
}

function evolve(state: PlanState, event: E): PlanState {
  switch (event.type) {
    case 'plans.PlanCreated':
    case 'plans.PlanUpdated':
      return { ...state, planId: event.data.planId, name: event.data.name, terms: termsFromFields(event.data) };
    case 'plans.PlanRetired':
      return { ...state, retired: true };
  }
}

export const planDecider: Decider<PlanState, PlanCommand, PlanEventKey> = {
  initialState: { planId: null, name: '', terms: null, retired: false },
  decide,
  evolve,
};
