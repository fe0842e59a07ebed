/**
 * A proxy node (`<ns>.evt.fleet.node.<nodeId>`). The node's name is its id, so
 * a name cannot be taken twice: the aggregate subject is the reservation.
 * Registration from a discovery file is an upsert: the same file read twice
 * records nothing the second time. Health and the agent's reports record only
 * changes; a retired node accepts nothing but reads.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import type { NodeDescription, NodeHealth } from './model.js';

export type NodeEventKey =
  | 'fleet.NodeRegistered'
  | 'fleet.NodeUpdated'
  | 'fleet.NodeEnrollmentTokenIssued'
  | 'fleet.NodeEnrolled'
  | 'fleet.NodeHealthChanged'
  | 'fleet.NodeDrained'
  | 'fleet.NodeUndrained'
  | 'fleet.NodeRetired'
  | 'fleet.NodeConfigApplied'
  | 'fleet.NodeConfigRejected';

export type NodeSource = 'api' | 'cli' | 'discovery';

export interface NodeState {
  node: NodeDescription | null;
  retired: boolean;
  drained: boolean;
  health: NodeHealth;
  pendingToken: { hash: string; expiresAt: Date } | null;
  natsUser: string | null;
  lastApplied: string | null;
  lastRejected: string | null;
}

export type NodeCommand =
  | { type: 'RegisterNode'; node: NodeDescription; source: NodeSource; at: Date }
  /** Create or update: what `nodes.yaml` and `PUT` do. */
  | { type: 'DescribeNode'; node: NodeDescription; source: NodeSource; at: Date }
  | { type: 'IssueEnrollmentToken'; nodeId: string; tokenHash: string; expiresAt: Date; at: Date }
  | { type: 'Enroll'; nodeId: string; tokenHash: string; natsUser: string; natsPasswordHash: string; at: Date }
  | { type: 'ReportHealth'; nodeId: string; health: Exclude<NodeHealth, 'unknown'>; reason: string; at: Date }
  | { type: 'Drain' | 'Undrain' | 'Retire'; nodeId: string; by: string; at: Date }
  | { type: 'ReportApplied'; nodeId: string; template: string; version: string; rolloutId: string | null; restarted: boolean; at: Date }
  | { type: 'ReportRejected'; nodeId: string; template: string; version: string; rolloutId: string | null; error: string; at: Date };

type E = DomainEvent<NodeEventKey>;

const notFound = (nodeId: string) => new DomainError('node_not_found', `no node ${nodeId}`);

function sameDescription(a: NodeDescription, b: NodeDescription): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function describe(command: Extract<NodeCommand, { type: 'RegisterNode' | 'DescribeNode' }>, state: NodeState): E[] {
  const { node, source, at } = command;
  if (state.retired) throw new DomainError('node_retired', `node ${node.nodeId} is retired; its name stays taken`);
  if (!state.node) return [{ type: 'fleet.NodeRegistered', data: { ...node, source, registeredAt: at } }];
  if (command.type === 'RegisterNode') throw new DomainError('node_exists', `node ${node.nodeId} already exists`);
  if (sameDescription(state.node, node)) return [];
  return [{ type: 'fleet.NodeUpdated', data: { ...node, source, updatedAt: at } }];
}

/**
 * Whether `tokenHash` redeems the node's pending token at `at`; throws the one
 * answer for a wrong, spent or expired token (or no node): the caller learns nothing about which.
 */
export function checkEnrollmentToken(state: Pick<NodeState, 'pendingToken'>, tokenHash: string, at: Date): void {
  const token = state.pendingToken;
  if (!token || token.hash !== tokenHash || token.expiresAt.getTime() <= at.getTime()) {
    throw new DomainError('invalid_enrollment_token', 'the enrollment token is wrong, spent or expired');
  }
}

function enroll(command: Extract<NodeCommand, { type: 'Enroll' }>, state: NodeState): E[] {
  checkEnrollmentToken(state, command.tokenHash, command.at);
  const { nodeId, natsUser, natsPasswordHash, at } = command;
  return [{ type: 'fleet.NodeEnrolled', data: { nodeId, natsUser, natsPasswordHash, enrolledAt: at } }];
}

function decide(command: NodeCommand, state: NodeState): E[] {
  if (command.type === 'RegisterNode' || command.type === 'DescribeNode') return describe(command, state);
  const { nodeId, at } = command;
  if (!state.node) throw notFound(nodeId);
  if (command.type === 'Enroll') return enroll(command, state);
  // What agents report about a retired node no longer matters; operators get a clear refusal.
  if (state.retired) {
    if (command.type === 'ReportHealth' || command.type === 'ReportApplied' || command.type === 'ReportRejected' || command.type === 'Retire') return [];
    throw new DomainError('node_retired', `node ${nodeId} is retired`);
  }
  switch (command.type) {
    case 'IssueEnrollmentToken':
      return [{ type: 'fleet.NodeEnrollmentTokenIssued', data: { nodeId, tokenHash: command.tokenHash, expiresAt: command.expiresAt, issuedAt: at } }];
    case 'ReportHealth':
      if (state.health === command.health) return [];
      return [{ type: 'fleet.NodeHealthChanged', data: { nodeId, health: command.health, reason: command.reason, changedAt: at } }];
    case 'Drain':
      return state.drained ? [] : [{ type: 'fleet.NodeDrained', data: { nodeId, by: command.by, drainedAt: at } }];
    case 'Undrain':
      return state.drained ? [{ type: 'fleet.NodeUndrained', data: { nodeId, by: command.by, undrainedAt: at } }] : [];
    case 'Retire':
      return [{ type: 'fleet.NodeRetired', data: { nodeId, by: command.by, retiredAt: at } }];
    case 'ReportApplied': {
      if (state.lastApplied === command.version) return [];
      const { template, version, rolloutId, restarted } = command;
      return [{ type: 'fleet.NodeConfigApplied', data: { nodeId, template, version, rolloutId, restarted, appliedAt: at } }];
    }
    case 'ReportRejected': {
      if (state.lastRejected === command.version) return [];
      const { template, version, rolloutId, error } = command;
      return [{ type: 'fleet.NodeConfigRejected', data: { nodeId, template, version, rolloutId, error, rejectedAt: at } }];
    }
  }
}

function description(data: NodeDescription): NodeDescription {
  const { nodeId, address, region, country, city, labels, roles } = data;
  return { nodeId, address, region, country, city, labels, roles };
}

function evolve(state: NodeState, event: E): NodeState {
  switch (event.type) {
    case 'fleet.NodeRegistered':
    case 'fleet.NodeUpdated':
      return { ...state, node: description(event.data) };
    case 'fleet.NodeEnrollmentTokenIssued':
      return { ...state, pendingToken: { hash: event.data.tokenHash, expiresAt: event.data.expiresAt } };
    case 'fleet.NodeEnrolled':
      return { ...state, pendingToken: null, natsUser: event.data.natsUser };
    case 'fleet.NodeHealthChanged':
      return { ...state, health: event.data.health as NodeHealth };
    case 'fleet.NodeDrained':
      return { ...state, drained: true };
    case 'fleet.NodeUndrained':
      return { ...state, drained: false };
    case 'fleet.NodeRetired':
      return { ...state, retired: true, pendingToken: null };
    case 'fleet.NodeConfigApplied':
      return { ...state, lastApplied: event.data.version, lastRejected: null };
    case 'fleet.NodeConfigRejected':
      return { ...state, lastRejected: event.data.version };
  }
}

export const nodeDecider: Decider<NodeState, NodeCommand, NodeEventKey> = {
  initialState: { node: null, retired: false, drained: false, health: 'unknown', pendingToken: null, natsUser: null, lastApplied: null, lastRejected: null },
  decide,
  evolve,
};
