/**
 * Who is on which node: users with active proxy credentials (identity's
 * `proxy_credentials`) and a subscription that gives access (the plans
 * context's `subscriptions`, judged by producers/plans/access.ts), each with
 * the node labels and inbound kinds their plan allows. An account with no
 * subscription, admins and operators included, is on no node.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import { proxyUserOf, type ProxyUser } from '../../producers/fleet/model.js';
import { ACCESS_STATUSES, givesAccess, nodeAllowed } from '../../producers/plans/access.js';

export interface EntitledUser {
  /** Credentials, with `inboundKinds` from the plan. */
  user: ProxyUser;
  /** Nodes carrying any of these labels; empty = every node. */
  nodeLabels: readonly string[];
}

/** Entitled users by id: everyone, or only those of `userIds` (the others have no access). */
export async function entitledUsers(db: Kysely<Database>, userIds?: readonly string[]): Promise<Map<string, EntitledUser>> {
  if (userIds?.length === 0) return new Map();
  let query = db
    .selectFrom('proxy_credentials as c')
    .innerJoin('subscriptions as s', 's.user_id', 'c.user_id')
    .select(['c.user_id', 'c.vless_id', 'c.trojan_password', 'c.proxy_username', 'c.proxy_password', 's.status', 's.overage', 's.node_labels', 's.inbound_kinds'])
    .where('c.status', '=', 'active')
    // A narrowing the index serves; givesAccess below is the rule.
    .where('s.status', 'in', [...ACCESS_STATUSES, 'limited']);
  if (userIds) query = query.where('c.user_id', 'in', [...userIds]);
  const rows = await query.execute();
  const users = new Map<string, EntitledUser>();
  for (const row of rows) {
    if (!givesAccess(row)) continue;
    users.set(row.user_id, { user: { ...proxyUserOf(row), inboundKinds: row.inbound_kinds }, nodeLabels: row.node_labels });
  }
  return users;
}

/** The users of `entitled` that belong on a node with these labels. */
export function usersOnNode(entitled: Iterable<EntitledUser>, nodeLabels: readonly string[]): ProxyUser[] {
  const users: ProxyUser[] = [];
  for (const e of entitled) if (nodeAllowed(e, nodeLabels)) users.push(e.user);
  return users;
}

/** Every node label some plan of `entitled` names. */
export function namedLabels(entitled: Iterable<EntitledUser>): Set<string> {
  const named = new Set<string>();
  for (const e of entitled) for (const label of e.nodeLabels) named.add(label);
  return named;
}

/**
 * What tells two nodes' user sets apart: their labels that some plan names
 * (`named`, from namedLabels). Nodes with equal keys get equal users, so one
 * rendering (or one push) serves them all, however many distinct label sets
 * the fleet has.
 */
export function accessKey(named: ReadonlySet<string>, nodeLabels: readonly string[]): string {
  return [...new Set(nodeLabels.filter((l) => named.has(l)))].sort().join(',');
}
