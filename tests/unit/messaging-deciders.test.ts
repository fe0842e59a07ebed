/** Given/when/then for the messaging aggregates: devices, contacts and blocks, groups; and the key shape checks. */
import { describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError } from '../../producers/decider.js';
import { contactsDecider, type ContactsEventKey } from '../../producers/messaging/contacts.decider.js';
import { devicesDecider, type DevicesCommand, type DevicesEventKey } from '../../producers/messaging/devices.decider.js';
import { groupDecider, type GroupEventKey } from '../../producers/messaging/group.decider.js';
import { checkOneTimePreKeys, checkPublicKey, checkSignature } from '../../producers/messaging/key-shapes.js';
import { MAX_DEVICES_PER_USER, MAX_GROUP_MEMBERS } from '../../producers/messaging/limits.js';
import { given } from '../support/decider-spec.js';

const at = new Date('2026-11-25T10:00:00Z');
const spk = { id: 1, publicKey: 'spk1', signature: 'sig1' };

function registered(deviceId: string, identityKey = 'ik1'): DomainEvent<DevicesEventKey> {
  return {
    type: 'messaging.DeviceRegistered',
    data: { deviceId, userId: 'u1', name: `phone ${deviceId}`, identityKey, signedPreKeyId: 1, signedPreKey: 'spk1', signedPreKeySignature: 'sig1', registeredAt: at },
  };
}
const register = (deviceId: string, identityKey = 'ik1', preKeyCount = 0): DevicesCommand => ({
  type: 'RegisterDevice',
  userId: 'u1',
  deviceId,
  name: `phone ${deviceId}`,
  identityKey,
  signedPreKey: spk,
  preKeyCount,
  at,
});
const removed = (deviceId: string): DomainEvent<DevicesEventKey> => ({ type: 'messaging.DeviceRemoved', data: { deviceId, userId: 'u1', removedAt: at } });

describe('devices', () => {
  it('registration records the device, and the upload count when keys came with it', () => {
    given(devicesDecider).when(register('d1')).then([registered('d1')]);
    given(devicesDecider)
      .when(register('d1', 'ik1', 30))
      .then([registered('d1'), { type: 'messaging.PreKeysUploaded', data: { userId: 'u1', deviceId: 'd1', count: 30, uploadedAt: at } }]);
    given(devicesDecider, [registered('d1')]).when(register('d1')).thenError('device_exists');
  });

  it('a device with another identity key than the last one is an identity key change', () => {
    given(devicesDecider, [registered('d1', 'ik1')])
      .when(register('d2', 'ik2'))
      .then([registered('d2', 'ik2'), { type: 'messaging.IdentityKeyChanged', data: { userId: 'u1', deviceId: 'd2', previousIdentityKey: 'ik1', identityKey: 'ik2', changedAt: at } }]);
    given(devicesDecider, [registered('d1', 'ik1')]).when(register('d2', 'ik1')).then([registered('d2', 'ik1')]);
  });

  it(`at most ${MAX_DEVICES_PER_USER} active devices; a removed one frees its place`, () => {
    const full = Array.from({ length: MAX_DEVICES_PER_USER }, (_, i) => registered(`d${i}`));
    given(devicesDecider, full).when(register('extra')).thenError('device_limit_reached');
    given(devicesDecider, [...full, removed('d0')]).when(register('extra')).then([registered('extra')]);
  });

  it('prekeys, rotation and removal need an active device of this user', () => {
    given(devicesDecider, [registered('d1')])
      .when({ type: 'UploadPreKeys', userId: 'u1', deviceId: 'd1', count: 5, at })
      .then([{ type: 'messaging.PreKeysUploaded', data: { userId: 'u1', deviceId: 'd1', count: 5, uploadedAt: at } }]);
    given(devicesDecider, [registered('d1')]).when({ type: 'UploadPreKeys', userId: 'u1', deviceId: 'other', count: 5, at }).thenError('device_not_found');
    given(devicesDecider, [registered('d1'), removed('d1')]).when({ type: 'UploadPreKeys', userId: 'u1', deviceId: 'd1', count: 5, at }).thenError('device_not_found');
    given(devicesDecider, [registered('d1'), removed('d1')]).when({ type: 'RotateSignedPreKey', userId: 'u1', deviceId: 'd1', signedPreKey: spk, at }).thenError('device_not_found');
    given(devicesDecider).when({ type: 'RemoveDevice', userId: 'u1', deviceId: 'd1', at }).thenError('device_not_found');
  });

  it('rotating to the same signed prekey is a no-op; a new one is an event', () => {
    given(devicesDecider, [registered('d1')]).when({ type: 'RotateSignedPreKey', userId: 'u1', deviceId: 'd1', signedPreKey: spk, at }).then([]);
    given(devicesDecider, [registered('d1')])
      .when({ type: 'RotateSignedPreKey', userId: 'u1', deviceId: 'd1', signedPreKey: { id: 2, publicKey: 'spk2', signature: 'sig2' }, at })
      .then([{ type: 'messaging.SignedPreKeyRotated', data: { deviceId: 'd1', userId: 'u1', signedPreKeyId: 2, signedPreKey: 'spk2', signedPreKeySignature: 'sig2', rotatedAt: at } }]);
  });

  it('removing twice is a retry', () => {
    given(devicesDecider, [registered('d1')]).when({ type: 'RemoveDevice', userId: 'u1', deviceId: 'd1', at }).then([removed('d1')]);
    given(devicesDecider, [registered('d1'), removed('d1')]).when({ type: 'RemoveDevice', userId: 'u1', deviceId: 'd1', at }).then([]);
  });
});

describe('contacts and blocks', () => {
  const added: DomainEvent<ContactsEventKey> = { type: 'messaging.ContactAdded', data: { userId: 'u1', contactId: 'u2', addedAt: at } };
  const blocked: DomainEvent<ContactsEventKey> = { type: 'messaging.UserBlocked', data: { userId: 'u1', blockedId: 'u2', blockedAt: at } };

  it('adding and blocking are idempotent; removing what is not there is a no-op', () => {
    given(contactsDecider).when({ type: 'AddContact', userId: 'u1', otherId: 'u2', at }).then([added]);
    given(contactsDecider, [added]).when({ type: 'AddContact', userId: 'u1', otherId: 'u2', at }).then([]);
    given(contactsDecider, [added]).when({ type: 'RemoveContact', userId: 'u1', otherId: 'u2', at }).then([{ type: 'messaging.ContactRemoved', data: { userId: 'u1', contactId: 'u2', removedAt: at } }]);
    given(contactsDecider).when({ type: 'RemoveContact', userId: 'u1', otherId: 'u2', at }).then([]);
    given(contactsDecider).when({ type: 'Block', userId: 'u1', otherId: 'u2', at }).then([blocked]);
    given(contactsDecider, [blocked]).when({ type: 'Block', userId: 'u1', otherId: 'u2', at }).then([]);
    given(contactsDecider, [blocked]).when({ type: 'Unblock', userId: 'u1', otherId: 'u2', at }).then([{ type: 'messaging.UserUnblocked', data: { userId: 'u1', blockedId: 'u2', unblockedAt: at } }]);
    given(contactsDecider).when({ type: 'Unblock', userId: 'u1', otherId: 'u2', at }).then([]);
  });

  it('nobody adds or blocks themselves', () => {
    given(contactsDecider).when({ type: 'AddContact', userId: 'u1', otherId: 'u1', at }).thenError('cannot_target_self');
    given(contactsDecider).when({ type: 'Block', userId: 'u1', otherId: 'u1', at }).thenError('cannot_target_self');
  });
});

describe('group', () => {
  const created: DomainEvent<GroupEventKey> = { type: 'messaging.GroupCreated', data: { groupId: 'g1', name: 'team', createdBy: 'u1', members: ['u1', 'u2', 'u3'], createdAt: at } };

  it('the creator is always a member, listed first, each member once', () => {
    given(groupDecider).when({ type: 'CreateGroup', groupId: 'g1', name: 'team', createdBy: 'u1', members: ['u2', 'u1', 'u3', 'u2'], at }).then([created]);
    given(groupDecider, [created]).when({ type: 'CreateGroup', groupId: 'g1', name: 'again', createdBy: 'u1', members: [], at }).thenError('group_exists');
  });

  it(`holds at most ${MAX_GROUP_MEMBERS} members, which is at least the 1,000 the benchmark connects`, () => {
    expect(MAX_GROUP_MEMBERS).toBeGreaterThanOrEqual(1000);
    const many = Array.from({ length: MAX_GROUP_MEMBERS - 1 }, (_, i) => `m${i}`);
    given(groupDecider).when({ type: 'CreateGroup', groupId: 'g1', name: 'big', createdBy: 'u1', members: [...many, 'one-too-many'], at }).thenError('group_full');
    const full: DomainEvent<GroupEventKey> = { type: 'messaging.GroupCreated', data: { groupId: 'g1', name: 'big', createdBy: 'u1', members: ['u1', ...many], createdAt: at } };
    given(groupDecider, [full]).when({ type: 'AddMember', groupId: 'g1', by: 'u1', userId: 'late', at }).thenError('group_full');
  });

  it('members add; outsiders learn nothing', () => {
    given(groupDecider, [created]).when({ type: 'AddMember', groupId: 'g1', by: 'u2', userId: 'u4', at }).then([{ type: 'messaging.GroupMemberAdded', data: { groupId: 'g1', userId: 'u4', addedBy: 'u2', addedAt: at } }]);
    given(groupDecider, [created]).when({ type: 'AddMember', groupId: 'g1', by: 'u2', userId: 'u3', at }).then([]);
    given(groupDecider, [created]).when({ type: 'AddMember', groupId: 'g1', by: 'stranger', userId: 'u4', at }).thenError('group_not_found');
    given(groupDecider).when({ type: 'AddMember', groupId: 'g1', by: 'u1', userId: 'u4', at }).thenError('group_not_found');
  });

  it('anyone may leave; only the admin removes others', () => {
    given(groupDecider, [created])
      .when({ type: 'RemoveMember', groupId: 'g1', by: 'u2', userId: 'u2', at })
      .then([{ type: 'messaging.GroupMemberRemoved', data: { groupId: 'g1', userId: 'u2', removedBy: 'u2', reason: 'left', removedAt: at } }]);
    given(groupDecider, [created])
      .when({ type: 'RemoveMember', groupId: 'g1', by: 'u1', userId: 'u3', at })
      .then([{ type: 'messaging.GroupMemberRemoved', data: { groupId: 'g1', userId: 'u3', removedBy: 'u1', reason: 'removed', removedAt: at } }]);
    given(groupDecider, [created]).when({ type: 'RemoveMember', groupId: 'g1', by: 'u2', userId: 'u3', at }).thenError('not_group_admin');
    const left: DomainEvent<GroupEventKey> = { type: 'messaging.GroupMemberRemoved', data: { groupId: 'g1', userId: 'u2', removedBy: 'u2', reason: 'left', removedAt: at } };
    given(groupDecider, [created, left]).when({ type: 'AddMember', groupId: 'g1', by: 'u2', userId: 'u4', at }).thenError('group_not_found');
  });
});

describe('key shapes', () => {
  const b64 = (n: number, fill = 7) => Buffer.alloc(n, fill).toString('base64');
  const codeOf = (fn: () => void) => {
    try {
      fn();
    } catch (err) {
      return err instanceof DomainError ? `${err.code} ${String(err.details['field'])}` : 'other';
    }
    return 'ok';
  };

  it('public keys are 32 or 33 bytes, signatures 64, in canonical base64', () => {
    expect(codeOf(() => checkPublicKey('identityKey', b64(32)))).toBe('ok');
    expect(codeOf(() => checkPublicKey('identityKey', b64(33)))).toBe('ok');
    expect(codeOf(() => checkPublicKey('identityKey', b64(31)))).toBe('invalid_key identityKey');
    expect(codeOf(() => checkPublicKey('identityKey', 'not base64!'))).toBe('invalid_key identityKey');
    expect(codeOf(() => checkPublicKey('identityKey', b64(32).replace(/=$/, '')))).toBe('invalid_key identityKey');
    expect(codeOf(() => checkSignature('signedPreKey.signature', b64(64)))).toBe('ok');
    expect(codeOf(() => checkSignature('signedPreKey.signature', b64(32)))).toBe('invalid_key signedPreKey.signature');
  });

  it('a batch of one-time prekeys names the bad entry, and refuses repeated ids', () => {
    expect(codeOf(() => checkOneTimePreKeys('oneTimePreKeys', [{ id: 1, publicKey: b64(32) }, { id: 2, publicKey: 'AAAA' }]))).toBe('invalid_key oneTimePreKeys.1.publicKey');
    expect(codeOf(() => checkOneTimePreKeys('oneTimePreKeys', [{ id: 1, publicKey: b64(32) }, { id: 1, publicKey: b64(32) }]))).toBe('invalid_key oneTimePreKeys.1.id');
  });
});
