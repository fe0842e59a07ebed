/**
 * A user's messenger devices (`<ns>.evt.messaging.devices.<userId>`): one
 * aggregate per user rather than per device, so the device limit and the
 * user's current identity key are decided against everything the user has.
 * Keys arrive already shape-checked (key-shapes.ts); signatures are the
 * clients' business.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import { MAX_DEVICES_PER_USER } from './limits.js';

export type DevicesEventKey =
  | 'messaging.DeviceRegistered'
  | 'messaging.SignedPreKeyRotated'
  | 'messaging.DeviceRemoved'
  | 'messaging.IdentityKeyChanged'
  | 'messaging.PreKeysUploaded';

export interface SignedPreKey {
  id: number;
  publicKey: string;
  signature: string;
}

export interface DeviceState {
  identityKey: string;
  signedPreKey: SignedPreKey;
  removed: boolean;
}

export interface DevicesState {
  devices: Readonly<Record<string, DeviceState>>;
  /** The identity key of the device registered last: what the user's contacts verify against. */
  identityKey: string | null;
}

export type DevicesCommand =
  | { type: 'RegisterDevice'; userId: string; deviceId: string; name: string; identityKey: string; signedPreKey: SignedPreKey; preKeyCount: number; at: Date }
  | { type: 'UploadPreKeys'; userId: string; deviceId: string; count: number; at: Date }
  | { type: 'RotateSignedPreKey'; userId: string; deviceId: string; signedPreKey: SignedPreKey; at: Date }
  | { type: 'RemoveDevice'; userId: string; deviceId: string; at: Date };

type E = DomainEvent<DevicesEventKey>;

/** A device of this user that is still linked. Removed, unknown and other people's devices all answer the same. */
function active(state: DevicesState, deviceId: string): DeviceState {
  const device = state.devices[deviceId];
  if (!device || device.removed) throw new DomainError('device_not_found', `no device ${deviceId}`);
  return device;
}

function activeCount(state: DevicesState): number {
  return Object.values(state.devices).filter((d) => !d.removed).length;
}

function register(command: Extract<DevicesCommand, { type: 'RegisterDevice' }>, state: DevicesState): E[] {
  const { userId, deviceId, at } = command;
  if (state.devices[deviceId]) throw new DomainError('device_exists', `device ${deviceId} is already registered`);
  if (activeCount(state) >= MAX_DEVICES_PER_USER) {
    throw new DomainError('device_limit_reached', `a user may have at most ${MAX_DEVICES_PER_USER} devices: remove one first`, { limit: MAX_DEVICES_PER_USER });
  }
  const events: E[] = [
    {
      type: 'messaging.DeviceRegistered',
      data: {
        deviceId,
        userId,
        name: command.name,
        identityKey: command.identityKey,
        signedPreKeyId: command.signedPreKey.id,
        signedPreKey: command.signedPreKey.publicKey,
        signedPreKeySignature: command.signedPreKey.signature,
        registeredAt: at,
      },
    },
  ];
  if (state.identityKey !== null && state.identityKey !== command.identityKey) {
    events.push({ type: 'messaging.IdentityKeyChanged', data: { userId, deviceId, previousIdentityKey: state.identityKey, identityKey: command.identityKey, changedAt: at } });
  }
  if (command.preKeyCount > 0) events.push({ type: 'messaging.PreKeysUploaded', data: { userId, deviceId, count: command.preKeyCount, uploadedAt: at } });
  return events;
}

function decide(command: DevicesCommand, state: DevicesState): E[] {
  if (command.type === 'RegisterDevice') return register(command, state);
  const { userId, deviceId, at } = command;
  switch (command.type) {
    case 'UploadPreKeys':
      active(state, deviceId);
      return command.count > 0 ? [{ type: 'messaging.PreKeysUploaded', data: { userId, deviceId, count: command.count, uploadedAt: at } }] : [];
    case 'RotateSignedPreKey': {
      const current = active(state, deviceId).signedPreKey;
      const next = command.signedPreKey;
      if (current.id === next.id && current.publicKey === next.publicKey && current.signature === next.signature) return [];
      return [{ type: 'messaging.SignedPreKeyRotated', data: { deviceId, userId, signedPreKeyId: next.id, signedPreKey: next.publicKey, signedPreKeySignature: next.signature, rotatedAt: at } }];
    }
    case 'RemoveDevice': {
      const device = state.devices[deviceId];
      if (!device) throw new DomainError('device_not_found', `no device ${deviceId}`);
      // Removing twice is a retry, not an error.
      return device.removed ? [] : [{ type: 'messaging.DeviceRemoved', data: { deviceId, userId, removedAt: at } }];
    }
  }
}

function withDevice(state: DevicesState, deviceId: string, change: (device: DeviceState) => DeviceState): DevicesState {
  const device = state.devices[deviceId];
  return device ? { ...state, devices: { ...state.devices, [deviceId]: change(device) } } : state;
}

function evolve(state: DevicesState, event: E): DevicesState {
  switch (event.type) {
    case 'messaging.DeviceRegistered': {
      const d = event.data;
      const device: DeviceState = { identityKey: d.identityKey, signedPreKey: { id: d.signedPreKeyId, publicKey: d.signedPreKey, signature: d.signedPreKeySignature }, removed: false };
      return { devices: { ...state.devices, [d.deviceId]: device }, identityKey: d.identityKey };
    }
    case 'messaging.SignedPreKeyRotated': {
      const d = event.data;
      return withDevice(state, d.deviceId, (device) => ({ ...device, signedPreKey: { id: d.signedPreKeyId, publicKey: d.signedPreKey, signature: d.signedPreKeySignature } }));
    }
    case 'messaging.DeviceRemoved':
      return withDevice(state, event.data.deviceId, (device) => ({ ...device, removed: true }));
    case 'messaging.IdentityKeyChanged':
    case 'messaging.PreKeysUploaded':
      return state;
  }
}

export const devicesDecider: Decider<DevicesState, DevicesCommand, DevicesEventKey> = {
  initialState: { devices: {}, identityKey: null },
  decide,
  evolve,
};
