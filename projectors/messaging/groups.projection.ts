/** `chat_groups` and `group_members`: each group and who is in it, for membership checks and group fan-out. */
import type { StoredEvent } from '../../contracts/envelope.js';
import type { ChatGroupTable } from '../../schema/database.js';
import type { Projection } from '../runtime/projection.js';
import { upsertUnnest, type UnnestColumn } from '../runtime/unnest.js';
import { foldRows, PairFold, storedById, type RowStep } from '../runtime/batch-fold.js';

const COLUMNS: UnnestColumn<ChatGroupTable>[] = [
  { name: 'id', arrayType: 'text[]', value: (r) => r.id },
  { name: 'name', arrayType: 'text[]', value: (r) => r.name },
  { name: 'created_by', arrayType: 'text[]', value: (r) => r.created_by },
  { name: 'created_at', arrayType: 'timestamptz[]', value: (r) => r.created_at },
  { name: 'last_seq', arrayType: 'bigint[]', value: (r) => r.last_seq },
];

/** The group row, and (as a side effect on `members`) who joins and leaves. */
function stepper(members: PairFold): (event: StoredEvent) => RowStep<ChatGroupTable> {
  return (event) => {
    const touched = (groupId: string): RowStep<ChatGroupTable> => ({ id: groupId, update: (row) => ({ ...row, last_seq: event.seq }) });
    switch (event.type) {
      case 'messaging.GroupCreated': {
        const d = event.data;
        for (const userId of d.members) members.set(d.groupId, userId, d.createdAt);
        return { id: d.groupId, create: { id: d.groupId, name: d.name, created_by: d.createdBy, created_at: d.createdAt, last_seq: event.seq } };
      }
      case 'messaging.GroupMemberAdded':
        members.set(event.data.groupId, event.data.userId, event.data.addedAt);
        return touched(event.data.groupId);
      case 'messaging.GroupMemberRemoved':
        members.unset(event.data.groupId, event.data.userId);
        return touched(event.data.groupId);
      default:
        return undefined;
    }
  };
}

export const groupsProjection: Projection = {
  name: 'groups',
  context: 'messaging',
  tables: ['chat_groups', 'group_members'],
  filter: (names) => names.aggregateSubjects('messaging', 'group'),
  async apply(trx, events) {
    const members = new PairFold('group_members', ['group_id', 'user_id', 'added_at']);
    const groups = await foldRows(events, stepper(members), storedById<ChatGroupTable>(trx, 'chat_groups'));
    await upsertUnnest(trx, 'chat_groups', COLUMNS, groups, ['id']);
    await members.write(trx);
  },
};
