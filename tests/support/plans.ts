/**
 * Plans for tests that need proxy users: access is a function of a
 * subscription (producers/plans/access.ts), so a user is on a node only once
 * a plan is granted to them.
 */
import { randomUUID } from 'node:crypto';
import type { Plans } from '../../producers/plans/plans.js';

const OPERATOR = { actor: 'operator:test' };

/** Creates a plan (unlimited, free, every node and kind unless `terms` say otherwise) and answers its id. */
export async function createPlan(plans: Plans, terms: Record<string, unknown> = {}): Promise<string> {
  const planId = `plan-${randomUUID()}`;
  await plans.catalogue.create({ planId, name: planId, price: { amountMinor: 0, currency: 'EUR' }, ...terms }, OPERATOR);
  return planId;
}

/** Grants `planId` to the user; answers the plans stream sequence of the grant. */
export async function grantPlan(plans: Plans, userId: string, planId: string): Promise<number> {
  return (await plans.subscriptions.start(userId, { planId }, OPERATOR)).seq;
}
