/** Group chats: creation and membership. The rules live in group.decider.ts. */
import { uuidv7 } from '../../contracts/ids.js';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import { groupDecider } from './group.decider.js';
import type { MessagingDeps, Written } from './messaging-deps.js';

export interface GroupView {
  groupId: string;
  name: string;
  createdBy: string;
  createdAt: Date;
  members: { userId: string; addedAt: Date | null }[];
  sequence: number;
}

export class Groups {
  constructor(private readonly d: MessagingDeps) {}

  private async requireLive(ids: readonly string[]): Promise<void> {
    const live = await this.d.liveUsers(ids);
    const unknown = ids.filter((id) => !live.has(id));
    if (unknown.length > 0) throw new DomainError('user_not_found', `members: no user ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', …' : ''}`);
  }

  async create(createdBy: string, name: string, members: readonly string[], actor: Actor, now = new Date()): Promise<Written & { groupId: string }> {
    await this.requireLive(members.filter((id) => id !== createdBy));
    const groupId = uuidv7(now.getTime());
    const { seq } = await this.d.decide(groupDecider, 'group', groupId, { type: 'CreateGroup', groupId, name, createdBy, members, at: now }, actor, true);
    return { groupId, seq };
  }

  async addMember(groupId: string, by: string, userId: string, actor: Actor, now = new Date()): Promise<Written> {
    // An outsider learns nothing about the group, not even by naming someone who does not exist.
    const { state } = await this.d.handler.load(groupDecider, this.d.subject('group', groupId));
    if (!state.groupId || !state.members.includes(by)) throw new DomainError('group_not_found', `no group ${groupId}`);
    await this.requireLive([userId]);
    return this.d.decide(groupDecider, 'group', groupId, { type: 'AddMember', groupId, by, userId, at: now }, actor);
  }

  removeMember(groupId: string, by: string, userId: string, actor: Actor, now = new Date()): Promise<Written> {
    return this.d.decide(groupDecider, 'group', groupId, { type: 'RemoveMember', groupId, by, userId, at: now }, actor);
  }

  /** The group as the read model has it, for its members only; anyone else gets what an unknown id gets. */
  async view(groupId: string, requesterId: string): Promise<GroupView> {
    const { db } = this.d;
    const [group, members] = await Promise.all([
      db.selectFrom('chat_groups').selectAll().where('id', '=', groupId).executeTakeFirst(),
      db.selectFrom('group_members').select(['user_id', 'added_at']).where('group_id', '=', groupId).orderBy('added_at').orderBy('user_id').execute(),
    ]);
    if (!group || !members.some((m) => m.user_id === requesterId)) throw new DomainError('group_not_found', `no group ${groupId}`);
    return {
      groupId,
      name: group.name,
      createdBy: group.created_by,
      createdAt: group.created_at,
      members: members.map((m) => ({ userId: m.user_id, addedAt: m.added_at })),
      sequence: group.last_seq,
    };
  }
}
