/** Given/when/then for the fleet aggregates: nodes, inbound profiles, rollouts. */
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { nodeDecider, type NodeCommand, type NodeEventKey } from '../../producers/fleet/node.decider.js';
import { profileDecider, type ProfileEventKey } from '../../producers/fleet/profile.decider.js';
import { planWaves, rolloutDecider, type RolloutCommand, type RolloutEventKey } from '../../producers/fleet/rollout.decider.js';
import type { NodeDescription } from '../../producers/fleet/model.js';
import { given } from '../support/decider-spec.js';

const at = new Date('2026-11-24T10:00:00Z');
const later = new Date('2026-11-24T11:00:00Z');
const node: NodeDescription = { nodeId: 'fra-1', address: '203.0.113.7', region: 'eu', country: 'DE', city: 'Frankfurt', labels: ['eu'], roles: ['proxy'] };

describe('node', () => {
  const registered: DomainEvent<NodeEventKey> = { type: 'fleet.NodeRegistered', data: { ...node, source: 'api', registeredAt: at } };
  const describeNode = (n: NodeDescription): NodeCommand => ({ type: 'DescribeNode', node: n, source: 'discovery', at });

  it('registers once; a second registration of the name is refused', () => {
    given(nodeDecider).when({ type: 'RegisterNode', node, source: 'api', at }).then([registered]);
    given(nodeDecider, [registered]).when({ type: 'RegisterNode', node, source: 'api', at }).thenError('node_exists');
  });

  it('a discovery file read again records nothing; a changed entry records an update', () => {
    given(nodeDecider).when(describeNode(node)).then([{ type: 'fleet.NodeRegistered', data: { ...node, source: 'discovery', registeredAt: at } }]);
    given(nodeDecider, [registered]).when(describeNode(node)).then([]);
    const moved = { ...node, city: 'Offenbach' };
    given(nodeDecider, [registered]).when(describeNode(moved)).then([{ type: 'fleet.NodeUpdated', data: { ...moved, source: 'discovery', updatedAt: at } }]);
  });

  it('enrolls with the pending token only, once, before it expires', () => {
    const issued: DomainEvent<NodeEventKey> = { type: 'fleet.NodeEnrollmentTokenIssued', data: { nodeId: 'fra-1', tokenHash: 'h1', expiresAt: later, issuedAt: at } };
    const enroll = (tokenHash: string, when = at): NodeCommand => ({ type: 'Enroll', nodeId: 'fra-1', tokenHash, natsUser: 'node-fra-1', natsPasswordHash: '$2a$', at: when });
    const enrolled: DomainEvent<NodeEventKey> = { type: 'fleet.NodeEnrolled', data: { nodeId: 'fra-1', natsUser: 'node-fra-1', natsPasswordHash: '$2a$', enrolledAt: at } };
    given(nodeDecider, [registered, issued]).when(enroll('h1')).then([enrolled]);
    given(nodeDecider, [registered, issued]).when(enroll('wrong')).thenError('invalid_enrollment_token');
    given(nodeDecider, [registered, issued, enrolled]).when(enroll('h1')).thenError('invalid_enrollment_token');
    given(nodeDecider, [registered, issued]).when(enroll('h1', new Date(later.getTime() + 1))).thenError('invalid_enrollment_token');
    given(nodeDecider).when(enroll('h1')).thenError('node_not_found');
  });

  it('records health changes only', () => {
    const healthy: DomainEvent<NodeEventKey> = { type: 'fleet.NodeHealthChanged', data: { nodeId: 'fra-1', health: 'healthy', reason: 'heartbeat', changedAt: at } };
    given(nodeDecider, [registered]).when({ type: 'ReportHealth', nodeId: 'fra-1', health: 'healthy', reason: 'heartbeat', at }).then([healthy]);
    given(nodeDecider, [registered, healthy]).when({ type: 'ReportHealth', nodeId: 'fra-1', health: 'healthy', reason: 'heartbeat', at }).then([]);
  });

  it('drains, undrains and retires; a retired node refuses operators and ignores agents', () => {
    const drained: DomainEvent<NodeEventKey> = { type: 'fleet.NodeDrained', data: { nodeId: 'fra-1', by: 'operator:o', drainedAt: at } };
    given(nodeDecider, [registered]).when({ type: 'Drain', nodeId: 'fra-1', by: 'operator:o', at }).then([drained]);
    given(nodeDecider, [registered, drained]).when({ type: 'Drain', nodeId: 'fra-1', by: 'operator:o', at }).then([]);
    given(nodeDecider, [registered, drained])
      .when({ type: 'Undrain', nodeId: 'fra-1', by: 'operator:o', at })
      .then([{ type: 'fleet.NodeUndrained', data: { nodeId: 'fra-1', by: 'operator:o', undrainedAt: at } }]);
    const retired: DomainEvent<NodeEventKey> = { type: 'fleet.NodeRetired', data: { nodeId: 'fra-1', by: 'operator:o', retiredAt: at } };
    given(nodeDecider, [registered]).when({ type: 'Retire', nodeId: 'fra-1', by: 'operator:o', at }).then([retired]);
    given(nodeDecider, [registered, retired]).when({ type: 'Drain', nodeId: 'fra-1', by: 'operator:o', at }).thenError('node_retired');
    given(nodeDecider, [registered, retired]).when(describeNode(node)).thenError('node_retired');
    given(nodeDecider, [registered, retired]).when({ type: 'ReportHealth', nodeId: 'fra-1', health: 'down', reason: 'x', at }).then([]);
  });

  it('records an applied or rejected version once, however often the agent reports it', () => {
    const applied = { type: 'ReportApplied', nodeId: 'fra-1', template: 't1', version: 'v1', rolloutId: 'r1', restarted: true, at } as const;
    const appliedEvent: DomainEvent<NodeEventKey> = { type: 'fleet.NodeConfigApplied', data: { nodeId: 'fra-1', template: 't1', version: 'v1', rolloutId: 'r1', restarted: true, appliedAt: at } };
    given(nodeDecider, [registered]).when(applied).then([appliedEvent]);
    given(nodeDecider, [registered, appliedEvent]).when(applied).then([]);
    const rejected = { type: 'ReportRejected', nodeId: 'fra-1', template: 't2', version: 'v2', rolloutId: 'r2', error: 'bad cert', at } as const;
    const rejectedEvent: DomainEvent<NodeEventKey> = { type: 'fleet.NodeConfigRejected', data: { nodeId: 'fra-1', template: 't2', version: 'v2', rolloutId: 'r2', error: 'bad cert', rejectedAt: at } };
    given(nodeDecider, [registered, appliedEvent]).when(rejected).then([rejectedEvent]);
    given(nodeDecider, [registered, appliedEvent, rejectedEvent]).when(rejected).then([]);
  });
});

describe('profile', () => {
  const settings = { serverNames: ['example.com'] };
  const created: DomainEvent<ProfileEventKey> = {
    type: 'fleet.ProfileCreated',
    data: { profileId: 'vless-main', kind: 'vless', port: 443, labels: ['eu'], settingsJson: JSON.stringify(settings), secretsSealed: Buffer.alloc(0), createdAt: at },
  };

  it('creates once, updates on change only, removes', () => {
    given(profileDecider)
      .when({ type: 'CreateProfile', profileId: 'vless-main', kind: 'vless', port: 443, labels: ['eu'], settings, secretsSealed: Buffer.alloc(0), at })
      .then([created]);
    given(profileDecider, [created])
      .when({ type: 'CreateProfile', profileId: 'vless-main', kind: 'vless', port: 443, labels: ['eu'], settings, secretsSealed: Buffer.alloc(0), at })
      .thenError('profile_exists');
    given(profileDecider, [created]).when({ type: 'UpdateProfile', profileId: 'vless-main', port: 443, labels: ['eu'], settings, at }).then([]);
    given(profileDecider, [created])
      .when({ type: 'UpdateProfile', profileId: 'vless-main', port: 8443, labels: ['eu'], settings, at })
      .then([{ type: 'fleet.ProfileUpdated', data: { profileId: 'vless-main', port: 8443, labels: ['eu'], settingsJson: JSON.stringify(settings), updatedAt: at } }]);
    const removed: DomainEvent<ProfileEventKey> = { type: 'fleet.ProfileRemoved', data: { profileId: 'vless-main', removedAt: at } };
    given(profileDecider, [created]).when({ type: 'RemoveProfile', profileId: 'vless-main', at }).then([removed]);
    given(profileDecider, [created, removed]).when({ type: 'UpdateProfile', profileId: 'vless-main', port: 1, labels: [], settings, at }).thenError('profile_not_found');
  });
});

describe('rollout', () => {
  const targets = ['a', 'b', 'c', 'd'].map((nodeId) => ({ nodeId, template: 't2', previousTemplate: 't1' }));
  const waves = [['a'], ['b'], ['c', 'd']];
  const planned: DomainEvent<RolloutEventKey> = { type: 'fleet.RolloutPlanned', data: { rolloutId: 'r1', reason: 'profiles changed', targets, waves, maxRejections: 1, plannedBy: 'operator:o', plannedAt: at } };
  const wave = (n: number): DomainEvent<RolloutEventKey> => ({ type: 'fleet.RolloutWaveStarted', data: { rolloutId: 'r1', wave: n, nodeIds: waves[n]!, startedAt: at } });
  const reported = (nodeId: string, outcome: 'applied' | 'rejected', error: string | null = null): DomainEvent<RolloutEventKey> => ({
    type: 'fleet.RolloutNodeReported',
    data: { rolloutId: 'r1', nodeId, outcome, error, reportedAt: at },
  });
  const report = (nodeId: string, outcome: 'applied' | 'rejected', error: string | null = null): RolloutCommand => ({ type: 'ReportNodes', rolloutId: 'r1', reports: [{ nodeId, outcome, error }], at });
  const op = (type: 'Pause' | 'Resume' | 'Abort' | 'RollBack'): RolloutCommand => ({ type, rolloutId: 'r1', by: 'operator:o', at });

  it('plans and starts the canary at once', () => {
    given(rolloutDecider).when({ type: 'PlanRollout', rolloutId: 'r1', reason: 'profiles changed', targets, waves, maxRejections: 1, by: 'operator:o', at }).then([planned, wave(0)]);
    given(rolloutDecider).when({ type: 'PlanRollout', rolloutId: 'r1', reason: 'x', targets, waves: [['a']], maxRejections: 1, by: 'o', at }).thenError('invalid_waves');
    given(rolloutDecider).when({ type: 'PlanRollout', rolloutId: 'r1', reason: 'x', targets: [], waves: [], maxRejections: 1, by: 'o', at }).thenError('nothing_to_roll_out');
  });

  it('starts the next wave once every node of the current one reported, and completes after the last', () => {
    given(rolloutDecider, [planned, wave(0)]).when(report('a', 'applied')).then([reported('a', 'applied'), wave(1)]);
    given(rolloutDecider, [planned, wave(0), reported('a', 'applied'), wave(1), reported('b', 'applied'), wave(2)]).when(report('c', 'applied')).then([reported('c', 'applied')]);
    given(rolloutDecider, [planned, wave(0), reported('a', 'applied'), wave(1), reported('b', 'applied'), wave(2), reported('c', 'applied')])
      .when(report('d', 'rejected', 'bad'))
      .then([reported('d', 'rejected', 'bad'), { type: 'fleet.RolloutCompleted', data: { rolloutId: 'r1', applied: 3, rejected: 1, completedAt: at } }]);
  });

  it('halts when the canary rejects, and ignores reports after', () => {
    const halted: DomainEvent<RolloutEventKey> = { type: 'fleet.RolloutHalted', data: { rolloutId: 'r1', reason: 'canary a rejected the configuration: port in use', haltedAt: at } };
    given(rolloutDecider, [planned, wave(0)]).when(report('a', 'rejected', 'port in use')).then([reported('a', 'rejected', 'port in use'), halted]);
    given(rolloutDecider, [planned, wave(0), reported('a', 'rejected', 'port in use'), halted]).when(report('b', 'applied')).then([]);
  });

  it('halts once rejections exceed the allowance', () => {
    const history = [planned, wave(0), reported('a', 'applied'), wave(1), reported('b', 'rejected', 'x'), wave(2)];
    given(rolloutDecider, history)
      .when(report('c', 'rejected', 'y'))
      .then([reported('c', 'rejected', 'y'), { type: 'fleet.RolloutHalted', data: { rolloutId: 'r1', reason: '2 nodes rejected, more than the 1 allowed', haltedAt: at } }]);
  });

  it('decides many reports at once, each on the state the previous left: a wave can start and be reported in one decision', () => {
    const reports = (...r: [string, 'applied' | 'rejected'][]): RolloutCommand => ({ type: 'ReportNodes', rolloutId: 'r1', reports: r.map(([nodeId, outcome]) => ({ nodeId, outcome, error: null })), at });
    given(rolloutDecider, [planned, wave(0)])
      .when(reports(['c', 'applied'], ['a', 'applied'], ['b', 'applied'], ['c', 'applied'], ['a', 'applied']))
      .then([reported('a', 'applied'), wave(1), reported('b', 'applied'), wave(2), reported('c', 'applied')]);
    given(rolloutDecider, [planned, wave(0), reported('a', 'applied'), wave(1), reported('b', 'applied'), wave(2)])
      .when(reports(['c', 'applied'], ['d', 'applied']))
      .then([reported('c', 'applied'), reported('d', 'applied'), { type: 'fleet.RolloutCompleted', data: { rolloutId: 'r1', applied: 4, rejected: 0, completedAt: at } }]);
  });

  it('ignores nodes not yet told, and repeated reports', () => {
    given(rolloutDecider, [planned, wave(0)]).when(report('c', 'applied')).then([]);
    given(rolloutDecider, [planned, wave(0), reported('a', 'applied'), wave(1)]).when(report('a', 'applied')).then([]);
  });

  it('a paused rollout records reports but starts no wave until resumed', () => {
    const paused: DomainEvent<RolloutEventKey> = { type: 'fleet.RolloutPaused', data: { rolloutId: 'r1', by: 'operator:o', pausedAt: at } };
    given(rolloutDecider, [planned, wave(0)]).when(op('Pause')).then([paused]);
    given(rolloutDecider, [planned, wave(0), paused]).when(report('a', 'applied')).then([reported('a', 'applied')]);
    given(rolloutDecider, [planned, wave(0), paused, reported('a', 'applied')])
      .when(op('Resume'))
      .then([{ type: 'fleet.RolloutResumed', data: { rolloutId: 'r1', by: 'operator:o', resumedAt: at } }, wave(1)]);
  });

  it('aborts only an active rollout; rolls back the nodes told so far', () => {
    given(rolloutDecider, [planned, wave(0)]).when(op('Abort')).then([{ type: 'fleet.RolloutAborted', data: { rolloutId: 'r1', by: 'operator:o', abortedAt: at } }]);
    const completed: DomainEvent<RolloutEventKey> = { type: 'fleet.RolloutCompleted', data: { rolloutId: 'r1', applied: 4, rejected: 0, completedAt: at } };
    given(rolloutDecider, [planned, wave(0), completed]).when(op('Abort')).thenError('invalid_rollout_state');
    given(rolloutDecider, [planned, wave(0), reported('a', 'applied'), wave(1)])
      .when(op('RollBack'))
      .then([{ type: 'fleet.RolloutRolledBack', data: { rolloutId: 'r1', by: 'operator:o', nodeIds: ['a', 'b'], rolledBackAt: at } }]);
    given(rolloutDecider).when(op('Pause')).thenError('rollout_not_found');
  });

  it('plans waves: a canary, a share of the rest, then everyone else', () => {
    expect(planWaves([])).toEqual([]);
    expect(planWaves(['a'])).toEqual([['a']]);
    expect(planWaves(['a', 'b'])).toEqual([['a'], ['b']]);
    const many = Array.from({ length: 21 }, (_, i) => `n${String(i).padStart(2, '0')}`);
    const w = planWaves(many, 0.1);
    expect(w.map((x) => x.length)).toEqual([1, 2, 18]);
    expect(w.flat()).toEqual(many);
  });
});
