/**
 * Key transparency: for every active device of a user, the event that put its
 * identity key in the log, with an inclusion proof of that event in the
 * audited, signed Merkle tree (docs/auditors.md). A client that checks the
 * proof against a checkpoint signed by the audit key, and the key in the
 * proven event against the key bundle it was given, knows the server showed
 * it the same key it committed to for everyone: a key swapped for one
 * requester would need a second, visible event.
 */
import type { StoredEvent } from '../../contracts/envelope.js';
import type { InclusionProofFile } from '../../replay/audit/proof.js';
import type { MessagingDeps } from './messaging-deps.js';

export interface KeyEvidence {
  deviceId: string;
  identityKey: string;
  /** The DeviceRegistered event that carries the key. */
  eventId: string;
  /** Null until a checkpoint covers the event (the audit worker signs one every few seconds). */
  proof: InclusionProofFile | null;
  pending?: string;
}

/** Proves one event's inclusion; throws when no checkpoint covers it yet. */
export type ProveEvent = (eventId: string) => Promise<InclusionProofFile>;

/** Active devices and the event that registered each, from the user's devices aggregate. */
function registeredKeys(events: readonly StoredEvent[]): Map<string, { identityKey: string; eventId: string }> {
  const devices = new Map<string, { identityKey: string; eventId: string }>();
  for (const event of events) {
    if (event.type === 'messaging.DeviceRegistered') devices.set(event.data.deviceId, { identityKey: event.data.identityKey, eventId: event.id });
    else if (event.type === 'messaging.DeviceRemoved') devices.delete(event.data.deviceId);
  }
  return devices;
}

export class KeyTransparency {
  constructor(
    private readonly d: MessagingDeps,
    private readonly prove: ProveEvent | undefined,
  ) {}

  async evidence(requesterId: string, userId: string): Promise<{ userId: string; devices: KeyEvidence[] }> {
    // As with key bundles, someone the user blocked learns nothing, not even that there is a block.
    if (!(await this.d.keysVisible(requesterId, userId))) return { userId, devices: [] };
    const { events } = await this.d.handler.store.read(this.d.subject('devices', userId));
    const devices = await Promise.all(
      [...registeredKeys(events)].map(async ([deviceId, { identityKey, eventId }]): Promise<KeyEvidence> => {
        if (!this.prove) return { deviceId, identityKey, eventId, proof: null, pending: 'no audit log is configured for this API' };
        try {
          return { deviceId, identityKey, eventId, proof: await this.prove(eventId) };
        } catch (err) {
          return { deviceId, identityKey, eventId, proof: null, pending: (err as Error).message };
        }
      }),
    );
    return { userId, devices };
  }
}
