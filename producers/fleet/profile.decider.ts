/**
 * An inbound profile (`<ns>.evt.fleet.profile.<profileId>`). Input arrives
 * validated (profile-validation.ts); the decider owns existence and change.
 * Secrets are sealed before they reach it and never change after creation:
 * a new REALITY key pair is a new profile, so clients' links change knowingly.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import type { ProfileKind, ProfileSettings } from './model.js';

export type ProfileEventKey = 'fleet.ProfileCreated' | 'fleet.ProfileUpdated' | 'fleet.ProfileRemoved';

export interface ProfileState {
  profileId: string | null;
  kind: ProfileKind | null;
  port: number;
  labels: readonly string[];
  settingsJson: string;
  removed: boolean;
}

export interface ProfileShape {
  port: number;
  labels: string[];
  settings: ProfileSettings;
}

export type ProfileCommand =
  | ({ type: 'CreateProfile'; profileId: string; kind: ProfileKind; secretsSealed: Uint8Array; at: Date } & ProfileShape)
  | ({ type: 'UpdateProfile'; profileId: string; at: Date } & ProfileShape)
  | { type: 'RemoveProfile'; profileId: string; at: Date };

type E = DomainEvent<ProfileEventKey>;

function decide(command: ProfileCommand, state: ProfileState): E[] {
  const { profileId, at } = command;
  if (command.type === 'CreateProfile') {
    if (state.profileId) throw new DomainError('profile_exists', `profile ${profileId} already exists`);
    const { kind, port, labels, settings, secretsSealed } = command;
    return [{ type: 'fleet.ProfileCreated', data: { profileId, kind, port, labels, settingsJson: JSON.stringify(settings), secretsSealed: Buffer.from(secretsSealed), createdAt: at } }];
  }
  if (!state.profileId || state.removed) throw new DomainError('profile_not_found', `no profile ${profileId}`);
  if (command.type === 'RemoveProfile') return [{ type: 'fleet.ProfileRemoved', data: { profileId, removedAt: at } }];
  const settingsJson = JSON.stringify(command.settings);
  if (command.port === state.port && settingsJson === state.settingsJson && command.labels.join('\n') === state.labels.join('\n')) return [];
  return [{ type: 'fleet.ProfileUpdated', data: { profileId, port: command.port, labels: command.labels, settingsJson, updatedAt: at } }];
}

function evolve(state: ProfileState, event: E): ProfileState {
  switch (event.type) {
    case 'fleet.ProfileCreated': {
      const d = event.data;
      return { profileId: d.profileId, kind: d.kind as ProfileKind, port: d.port, labels: d.labels, settingsJson: d.settingsJson, removed: false };
    }
    case 'fleet.ProfileUpdated':
      return { ...state, port: event.data.port, labels: event.data.labels, settingsJson: event.data.settingsJson };
    case 'fleet.ProfileRemoved':
      return { ...state, removed: true };
  }
}

export const profileDecider: Decider<ProfileState, ProfileCommand, ProfileEventKey> = {
  initialState: { profileId: null, kind: null, port: 0, labels: [], settingsJson: '{}', removed: false },
  decide,
  evolve,
};
