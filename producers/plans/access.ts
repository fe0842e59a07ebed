/**
 * Who may use which node and inbound: access is a function of the user's
 * subscription (the `subscriptions` row, or none). Pure, so the fleet worker
 * (what is rendered and pushed to nodes) and the subscription links (what
 * clients are offered) cannot disagree.
 *
 * - Status: `active` gives access; so does `on_hold`, because a hold ends at
 *   the user's first traffic (subscription.decider.ts, Activate
 *   first_traffic), which cannot happen without access. `limited` gives
 *   access only with a `soft` overage (the decider marks block-overage
 *   subscriptions only, but a row says both, and the rule reads both).
 *   `expired` and `disabled` give none, nor does having no subscription.
 * - Nodes: the plan's node labels must meet the node's labels (any one in
 *   common); no labels = every node.
 * - Inbounds: the profile's kind must be among the plan's inbound kinds; none = every kind.
 */

export interface AccessTerms {
  status: string;
  overage: string;
  /** Nodes carrying any of these labels; empty = every node. */
  nodeLabels: readonly string[];
  /** Inbound kinds; empty = every kind. */
  inboundKinds: readonly string[];
}

/** Subscription statuses that give access whatever the overage. */
export const ACCESS_STATUSES = ['active', 'on_hold', 'past_due'] as const;

export function givesAccess(s: Pick<AccessTerms, 'status' | 'overage'> | null): boolean {
  if (!s) return false;
  return (ACCESS_STATUSES as readonly string[]).includes(s.status) || (s.status === 'limited' && s.overage === 'soft');
}

/** Whether the plan lets its user onto a node with these labels (status aside). */
export function nodeAllowed(s: Pick<AccessTerms, 'nodeLabels'>, nodeLabels: readonly string[]): boolean {
  return s.nodeLabels.length === 0 || s.nodeLabels.some((label) => nodeLabels.includes(label));
}

/** Whether the plan lets its user onto inbounds of this kind (status aside). */
export function kindAllowed(s: Pick<AccessTerms, 'inboundKinds'>, kind: string): boolean {
  return s.inboundKinds.length === 0 || s.inboundKinds.includes(kind);
}

/** The whole rule: is the user of this subscription on this inbound kind of this node? */
export function accessOn(s: AccessTerms | null, nodeLabels: readonly string[], kind: string): boolean {
  return s !== null && givesAccess(s) && nodeAllowed(s, nodeLabels) && kindAllowed(s, kind);
}
