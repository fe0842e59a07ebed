/**
 * Devices and their keys: registration, prekey top-ups, signed prekey
 * rotation, removal, and the key bundles other users fetch to open a session.
 * The log is written first and the prekey table second: a crash in between
 * leaves a device without one-time prekeys (bundles then carry null, and the
 * client tops up when it sees its count), never keys of a device that does not exist.
 */
import { uuidv7 } from '../../contracts/ids.js';
import type { DeviceTable } from '../../schema/database.js';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import { devicesDecider, type SignedPreKey } from './devices.decider.js';
import { checkOneTimePreKeys, checkPublicKey, checkSignature, type OneTimePreKey } from './key-shapes.js';
import { CLAIMS_PER_MINUTE, MAX_PREKEYS_PER_DEVICE } from './limits.js';
import type { MessagingDeps, Written } from './messaging-deps.js';

export interface NewDevice {
  name: string;
  identityKey: string;
  signedPreKey: SignedPreKey;
  oneTimePreKeys: readonly OneTimePreKey[];
}

export interface Bundle {
  userId: string;
  identityKey?: string;
  devices: {
    deviceId: string;
    identityKey: string;
    signedPreKey: SignedPreKey;
    oneTimePreKey: OneTimePreKey | null;
  }[];
}

/** `prefix` names where the key sits in the body; empty when the body is the key. */
function checkSignedPreKey(prefix: string, key: SignedPreKey): void {
  const at = (name: string) => (prefix ? `${prefix}.${name}` : name);
  checkPublicKey(at('publicKey'), key.publicKey);
  checkSignature(at('signature'), key.signature);
}

export class Devices {
  constructor(
    private readonly d: MessagingDeps,
    private readonly claimsPerMinute = CLAIMS_PER_MINUTE,
  ) {}

  async register(userId: string, input: NewDevice, actor: Actor, now = new Date()): Promise<Written & { deviceId: string }> {
    checkPublicKey('identityKey', input.identityKey);
    checkSignedPreKey('signedPreKey', input.signedPreKey);
    checkOneTimePreKeys('oneTimePreKeys', input.oneTimePreKeys);
    const deviceId = uuidv7(now.getTime());
    const { seq } = await this.d.decide(
      devicesDecider,
      'devices',
      userId,
      { type: 'RegisterDevice', userId, deviceId, name: input.name, identityKey: input.identityKey, signedPreKey: input.signedPreKey, preKeyCount: input.oneTimePreKeys.length, at: now },
      actor,
    );
    await this.d.preKeys.store(deviceId, input.oneTimePreKeys);
    return { deviceId, seq };
  }

  async uploadPreKeys(userId: string, deviceId: string, keys: readonly OneTimePreKey[], actor: Actor, now = new Date()): Promise<Written & { count: number }> {
    checkOneTimePreKeys('oneTimePreKeys', keys);
    await this.ownDevice(userId, deviceId);
    // A soft cap (count, then insert): concurrent top-ups of one device may pass it together, by one batch at most each.
    const held = await this.d.preKeys.count(deviceId);
    if (held + keys.length > MAX_PREKEYS_PER_DEVICE) {
      throw new DomainError('prekey_limit_reached', `oneTimePreKeys: a device holds at most ${MAX_PREKEYS_PER_DEVICE} unclaimed prekeys (it has ${held})`);
    }
    const { seq } = await this.d.decide(devicesDecider, 'devices', userId, { type: 'UploadPreKeys', userId, deviceId, count: keys.length, at: now }, actor);
    await this.d.preKeys.store(deviceId, keys);
    return { seq, count: await this.d.preKeys.count(deviceId) };
  }

  async rotateSignedPreKey(userId: string, deviceId: string, key: SignedPreKey, actor: Actor, now = new Date()): Promise<Written> {
    checkSignedPreKey('', key);
    return this.d.decide(devicesDecider, 'devices', userId, { type: 'RotateSignedPreKey', userId, deviceId, signedPreKey: key, at: now }, actor);
  }

  async remove(userId: string, deviceId: string, actor: Actor, now = new Date()): Promise<Written> {
    const written = await this.d.decide(devicesDecider, 'devices', userId, { type: 'RemoveDevice', userId, deviceId, at: now }, actor);
    await this.d.preKeys.discard(deviceId);
    return written;
  }

  /** Unclaimed one-time prekeys of one of the user's own active devices. */
  async preKeyCount(userId: string, deviceId: string): Promise<number> {
    await this.ownDevice(userId, deviceId);
    return this.d.preKeys.count(deviceId);
  }

  /** Ownership from the user's own aggregate: someone else's device is simply not in it, and answers like an unknown one. */
  private async ownDevice(userId: string, deviceId: string): Promise<void> {
    const { state } = await this.d.handler.load(devicesDecider, this.d.subject('devices', userId));
    const device = state.devices[deviceId];
    if (!device || device.removed) throw new DomainError('device_not_found', `no device ${deviceId}`);
  }

  list(userId: string): Promise<DeviceTable[]> {
    return this.d.db.selectFrom('devices').selectAll().where('user_id', '=', userId).where('removed_at', 'is', null).orderBy('registered_at').execute();
  }

  /**
   * What `requesterId` needs to open sessions with every active device of
   * `userId`, consuming one one-time prekey per device. Someone the user has
   * blocked gets the answer for a user without devices: a block must not be
   * observable, and the blocked user learns no keys.
   */
  async claimBundle(requesterId: string, userId: string): Promise<Bundle> {
    await this.d.limits.enforce([{ bucket: `prekey-claim:${requesterId}`, limit: this.claimsPerMinute, windowSeconds: 60 }]);
    if (!(await this.d.keysVisible(requesterId, userId))) return { userId, devices: [] };
    const devices = await this.list(userId);
    const claimed = await Promise.all(devices.map((device) => this.d.preKeys.claim(device.id)));
    const latest = devices.at(-1);
    return {
      userId,
      ...(latest ? { identityKey: latest.identity_key } : {}),
      devices: devices.map((device, i) => ({
        deviceId: device.id,
        identityKey: device.identity_key,
        signedPreKey: { id: device.signed_prekey_id, publicKey: device.signed_prekey, signature: device.signed_prekey_signature },
        oneTimePreKey: claimed[i] ?? null,
      })),
    };
  }
}
