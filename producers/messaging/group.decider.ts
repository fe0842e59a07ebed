/**
 * A group chat (`<ns>.evt.messaging.group.<groupId>`). Rules: the creator is
 * the group's admin; any member may add people; only the admin may remove
 * someone else; anyone may leave. If the admin leaves, nobody can remove
 * others any more (members can still leave): admin hand-over is not built yet.
 * A non-member learns nothing: every command from outside answers
 * `group_not_found`, as for a group that does not exist.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import { MAX_GROUP_MEMBERS } from './limits.js';

export type GroupEventKey = 'messaging.GroupCreated' | 'messaging.GroupMemberAdded' | 'messaging.GroupMemberRemoved';

export interface GroupState {
  groupId: string | null;
  createdBy: string | null;
  members: readonly string[];
}

export type GroupCommand =
  | { type: 'CreateGroup'; groupId: string; name: string; createdBy: string; members: readonly string[]; at: Date }
  | { type: 'AddMember'; groupId: string; by: string; userId: string; at: Date }
  | { type: 'RemoveMember'; groupId: string; by: string; userId: string; at: Date };

type E = DomainEvent<GroupEventKey>;

const full = () => new DomainError('group_full', `members: a group has at most ${MAX_GROUP_MEMBERS} members`, { limit: MAX_GROUP_MEMBERS });

function create(command: Extract<GroupCommand, { type: 'CreateGroup' }>, state: GroupState): E[] {
  if (state.groupId) throw new DomainError('group_exists', `group ${command.groupId} already exists`);
  // The creator first, then everyone else once, in the order given.
  const members = [...new Set([command.createdBy, ...command.members])];
  if (members.length > MAX_GROUP_MEMBERS) throw full();
  const { groupId, name, createdBy, at } = command;
  return [{ type: 'messaging.GroupCreated', data: { groupId, name, createdBy, members, createdAt: at } }];
}

function decide(command: GroupCommand, state: GroupState): E[] {
  if (command.type === 'CreateGroup') return create(command, state);
  const { groupId, by, userId, at } = command;
  if (!state.groupId || !state.members.includes(by)) throw new DomainError('group_not_found', `no group ${groupId}`);
  switch (command.type) {
    case 'AddMember':
      if (state.members.includes(userId)) return [];
      if (state.members.length >= MAX_GROUP_MEMBERS) throw full();
      return [{ type: 'messaging.GroupMemberAdded', data: { groupId, userId, addedBy: by, addedAt: at } }];
    case 'RemoveMember': {
      if (!state.members.includes(userId)) return [];
      const leaving = userId === by;
      if (!leaving && by !== state.createdBy) throw new DomainError('not_group_admin', 'only the group admin may remove other members');
      return [{ type: 'messaging.GroupMemberRemoved', data: { groupId, userId, removedBy: by, reason: leaving ? 'left' : 'removed', removedAt: at } }];
    }
  }
}

function evolve(state: GroupState, event: E): GroupState {
  switch (event.type) {
    case 'messaging.GroupCreated':
      return { groupId: event.data.groupId, createdBy: event.data.createdBy, members: event.data.members };
    case 'messaging.GroupMemberAdded':
      return { ...state, members: [...state.members, event.data.userId] };
    case 'messaging.GroupMemberRemoved':
      return { ...state, members: state.members.filter((id) => id !== event.data.userId) };
  }
}

export const groupDecider: Decider<GroupState, GroupCommand, GroupEventKey> = {
  initialState: { groupId: null, createdBy: null, members: [] },
  decide,
  evolve,
};
