/**
 * The user aggregate (`<ns>.evt.identity.user.<id>`): account, credentials,
 * roles, privacy, second factor and status. Pure: the service layer seals
 * personal data and verifies passwords before it builds a command, so every
 * byte a command carries is already what the log may hold.
 */
import type { DomainEvent } from '../../contracts/envelope.js';
import { DomainError, type Decider } from '../decider.js';
import { asVisibility, DEFAULT_VISIBILITY, type Visibility } from './privacy.js';
import { isRole, type Role } from './roles.js';

/** Every user's zone until they choose one. */
export const DEFAULT_TIME_ZONE = 'UTC';


export type UserEventKey =
  | 'identity.UserRegistered'
  | 'identity.PasswordChanged'
  | 'identity.EmailVerificationRequested'
  | 'identity.EmailVerified'
  | 'identity.EmailChanged'
  | 'identity.RoleGranted'
  | 'identity.RoleRevoked'
  | 'identity.UserSuspended'
  | 'identity.UserReinstated'
  | 'identity.UserForgotten'
  | 'identity.ProxyCredentialsIssued'
  | 'identity.PrivacySettingsChanged'
  | 'identity.TimeZoneChanged'
  | 'identity.TotpEnabled'
  | 'identity.TotpDisabled'
  | 'identity.RecoveryCodeUsed'
  | 'identity.UserRegistrationAbandoned'
  | 'identity.PasswordResetRequested'
  | 'identity.NotificationSettingsChanged';

export interface UserState {
  /** Null until the user is registered. */
  userId: string | null;
  status: 'active' | 'suspended' | 'forgotten';
  /** A registration that never completed was closed for good (see register-user.ts): the id never becomes a user. */
  abandoned: boolean;
  emailHash: string | null;
  emailSealed: Buffer | null;
  passwordHashSealed: Buffer | null;
  emailVerified: boolean;
  verification: { tokenHash: string; expiresAt: Date } | null;
  roles: Role[];
  privacy: { presence: Visibility; readReceipts: Visibility };
  totp: { secretSealed: Buffer; recoveryCodeHashes: string[]; used: number[] } | null;
  credentialsGeneration: number;
  /** IANA zone the plans context computes this user's periods in (producers/plans/periods.ts). */
  timeZone: string;
  /** The pending password reset: spent by any password change. */
  passwordReset: { tokenHash: string; expiresAt: Date } | null;
  /** Null until the user first chose (producers/notifications/settings.ts holds the defaults). */
  notificationSettings: NotificationSettingsData | null;
}

/** The notification settings as the event carries them (validated by producers/notifications/settings.ts). */
export interface NotificationSettingsData {
  disabled: string[];
  quietStart: string | null;
  quietEnd: string | null;
  digestMinutes: number;
}

/** A verification token as the outbox event carries it. */
export interface VerificationTicket {
  tokenHash: string;
  tokenSealed: Buffer;
  emailSealed: Buffer;
  expiresAt: Date;
}

export type UserCommand =
  | {
      type: 'RegisterUser';
      userId: string;
      emailHash: string;
      emailSealed: Buffer;
      displayNameSealed: Buffer | null;
      passwordHashSealed: Buffer | null;
      roles: readonly Role[];
      credentialsSealed: Buffer;
      verification: VerificationTicket;
      at: Date;
    }
  | { type: 'AbandonRegistration'; userId: string; emailHash: string; at: Date }
  | { type: 'ChangePassword'; passwordHashSealed: Buffer; at: Date }
  | { type: 'RequestEmailVerification'; verification: VerificationTicket; at: Date }
  | { type: 'VerifyEmail'; tokenHash: string; at: Date }
  | { type: 'RequestPasswordReset'; reset: VerificationTicket; at: Date }
  | { type: 'ResetPassword'; tokenHash: string; passwordHashSealed: Buffer; at: Date }
  | { type: 'ChangeNotificationSettings'; settings: NotificationSettingsData; at: Date }
  | { type: 'ChangeEmail'; emailHash: string; emailSealed: Buffer; verification: VerificationTicket; at: Date }
  | { type: 'GrantRole'; role: string; at: Date }
  | ({ type: 'RevokeRole'; role: string; at: Date } & AdminCount)
  | ({ type: 'Suspend'; reason: string; at: Date; /** The acting user, when a user (not an operator) acts. */ by?: string } & AdminCount)
  | { type: 'Reinstate'; at: Date }
  | ({ type: 'Forget'; at: Date } & AdminCount)
  | { type: 'RotateProxyCredentials'; credentialsSealed: Buffer; at: Date }
  | { type: 'ChangePrivacy'; presence: Visibility; readReceipts: Visibility; at: Date }
  /** `timeZone` arrives canonical (checkTimeZone): the decider compares names only. */
  | { type: 'ChangeTimeZone'; timeZone: string; at: Date }
  | { type: 'EnableTotp'; secretSealed: Buffer; recoveryCodeHashes: string[]; at: Date }
  | { type: 'DisableTotp'; at: Date }
  | { type: 'UseRecoveryCode'; index: number; at: Date };

/**
 * What a command that can take the admin role away (suspending, revoking
 * `admin`, forgetting) knows about the others: the active admins besides this
 * user, counted from the log under the admin lock (admin-guard.ts). Left out,
 * it counts as none, so an uncounted command can never remove an admin.
 */
interface AdminCount {
  otherActiveAdmins?: number;
}

type E = DomainEvent<UserEventKey>;

const initialState: UserState = {
  userId: null,
  status: 'active',
  abandoned: false,
  emailHash: null,
  emailSealed: null,
  passwordHashSealed: null,
  emailVerified: false,
  verification: null,
  roles: [],
  privacy: { presence: DEFAULT_VISIBILITY, readReceipts: DEFAULT_VISIBILITY },
  totp: null,
  credentialsGeneration: 0,
  timeZone: DEFAULT_TIME_ZONE,
  passwordReset: null,
  notificationSettings: null,
};

/** The user must exist and not be forgotten; returns its id. */
function live(state: UserState): string {
  if (!state.userId) throw new DomainError('user_not_found', 'no such user');
  if (state.status === 'forgotten') throw new DomainError('user_forgotten', 'this account was deleted');
  return state.userId;
}

/** Refuses a change that would leave the installation without an active admin. */
function keepAnAdmin(state: UserState, command: AdminCount): void {
  const activeAdmin = state.status === 'active' && state.roles.includes('admin');
  if (activeAdmin && !((command.otherActiveAdmins ?? 0) > 0)) {
    throw new DomainError('last_admin', 'this is the last active admin: make another admin first');
  }
}

function verificationRequested(userId: string, ticket: VerificationTicket, at: Date): E {
  return { type: 'identity.EmailVerificationRequested', data: { userId, ...ticket, requestedAt: at } };
}

/** A mailed token (verification, password reset) must be the pending one and unexpired. */
function checkToken(pending: { tokenHash: string; expiresAt: Date } | null, tokenHash: string, at: Date, what: string): void {
  if (!pending || pending.tokenHash !== tokenHash) throw new DomainError('invalid_token', `this ${what} token is not valid for the account`);
  if (pending.expiresAt.getTime() < at.getTime()) throw new DomainError('token_expired', `this ${what} token has expired: request a new one`);
}

function decide(command: UserCommand, state: UserState): E[] {
  if (command.type === 'RegisterUser') {
    if (state.userId) throw new DomainError('user_exists', `user ${command.userId} is already registered`);
    // The next registration of the address found this one stalled and took the address over.
    if (state.abandoned) throw new DomainError('email_taken', 'this email address is already registered');
    const { userId, at } = command;
    return [
      {
        type: 'identity.UserRegistered',
        data: {
          userId,
          emailHash: command.emailHash,
          emailSealed: command.emailSealed,
          displayNameSealed: command.displayNameSealed,
          passwordHashSealed: command.passwordHashSealed,
          roles: [...command.roles],
          registeredAt: at,
        },
      },
      { type: 'identity.ProxyCredentialsIssued', data: { userId, generation: 1, reason: 'registration', credentialsSealed: command.credentialsSealed, issuedAt: at } },
      verificationRequested(userId, command.verification, at),
    ];
  }
  if (command.type === 'AbandonRegistration') {
    // A registered user (or one already closed) is not abandoned: nothing to do, the caller reads the state.
    if (state.userId || state.abandoned) return [];
    return [{ type: 'identity.UserRegistrationAbandoned', data: { userId: command.userId, emailHash: command.emailHash, abandonedAt: command.at } }];
  }
  if (command.type === 'Forget') {
    if (state.status === 'forgotten') return [];
    keepAnAdmin(state, command);
    return [{ type: 'identity.UserForgotten', data: { userId: live(state), forgottenAt: command.at } }];
  }
  const userId = live(state);
  switch (command.type) {
    case 'ChangePassword':
      return [{ type: 'identity.PasswordChanged', data: { userId, passwordHashSealed: command.passwordHashSealed, changedAt: command.at } }];
    case 'RequestEmailVerification':
      if (state.emailVerified) return [];
      return [verificationRequested(userId, command.verification, command.at)];
    case 'VerifyEmail': {
      if (state.emailVerified) return [];
      checkToken(state.verification, command.tokenHash, command.at, 'verification');
      return [{ type: 'identity.EmailVerified', data: { userId, verifiedAt: command.at } }];
    }
    case 'RequestPasswordReset':
      // A suspended account keeps its password until an operator reinstates it.
      if (state.status !== 'active') return [];
      return [{ type: 'identity.PasswordResetRequested', data: { userId, ...command.reset, requestedAt: command.at } }];
    case 'ResetPassword':
      checkToken(state.passwordReset, command.tokenHash, command.at, 'password reset');
      return [{ type: 'identity.PasswordChanged', data: { userId, passwordHashSealed: command.passwordHashSealed, changedAt: command.at } }];
    case 'ChangeNotificationSettings': {
      const s = command.settings;
      const before = state.notificationSettings;
      if (before && JSON.stringify(before) === JSON.stringify(s)) return [];
      return [{ type: 'identity.NotificationSettingsChanged', data: { userId, ...s, changedAt: command.at } }];
    }
    case 'ChangeEmail':
      if (command.emailHash === state.emailHash) return [];
      return [
        { type: 'identity.EmailChanged', data: { userId, emailSealed: command.emailSealed, emailHash: command.emailHash, changedAt: command.at } },
        verificationRequested(userId, command.verification, command.at),
      ];
    case 'GrantRole':
      if (!isRole(command.role)) throw new DomainError('unknown_role', `"${command.role}" is not a role`);
      if (state.roles.includes(command.role)) return [];
      return [{ type: 'identity.RoleGranted', data: { userId, role: command.role, grantedAt: command.at } }];
    case 'RevokeRole':
      if (!isRole(command.role)) throw new DomainError('unknown_role', `"${command.role}" is not a role`);
      if (!state.roles.includes(command.role)) return [];
      if (command.role === 'admin') keepAnAdmin(state, command);
      return [{ type: 'identity.RoleRevoked', data: { userId, role: command.role, revokedAt: command.at } }];
    case 'Suspend':
      if (command.by === userId) throw new DomainError('cannot_suspend_self', 'you cannot suspend your own account');
      if (state.status === 'suspended') return [];
      keepAnAdmin(state, command);
      return [{ type: 'identity.UserSuspended', data: { userId, reason: command.reason, suspendedAt: command.at } }];
    case 'Reinstate':
      if (state.status !== 'suspended') return [];
      return [{ type: 'identity.UserReinstated', data: { userId, reinstatedAt: command.at } }];
    case 'RotateProxyCredentials':
      if (state.status === 'suspended') throw new DomainError('user_suspended', 'a suspended account cannot get new proxy credentials');
      return [
        {
          type: 'identity.ProxyCredentialsIssued',
          data: { userId, generation: state.credentialsGeneration + 1, reason: 'rotation', credentialsSealed: command.credentialsSealed, issuedAt: command.at },
        },
      ];
    case 'ChangePrivacy':
      if (state.privacy.presence === command.presence && state.privacy.readReceipts === command.readReceipts) return [];
      return [{ type: 'identity.PrivacySettingsChanged', data: { userId, presence: command.presence, readReceipts: command.readReceipts, changedAt: command.at } }];
    case 'ChangeTimeZone':
      if (state.timeZone === command.timeZone) return [];
      return [{ type: 'identity.TimeZoneChanged', data: { userId, timeZone: command.timeZone, changedAt: command.at } }];
    case 'EnableTotp':
      if (state.totp) throw new DomainError('totp_already_enabled', 'a second factor is already enabled: disable it first');
      return [{ type: 'identity.TotpEnabled', data: { userId, secretSealed: command.secretSealed, recoveryCodeHashes: command.recoveryCodeHashes, enabledAt: command.at } }];
    case 'DisableTotp':
      if (!state.totp) return [];
      return [{ type: 'identity.TotpDisabled', data: { userId, disabledAt: command.at } }];
    case 'UseRecoveryCode':
      if (!state.totp || command.index < 0 || command.index >= state.totp.recoveryCodeHashes.length || state.totp.used.includes(command.index)) {
        throw new DomainError('invalid_recovery_code', 'this recovery code is not valid or was already used');
      }
      return [{ type: 'identity.RecoveryCodeUsed', data: { userId, index: command.index, usedAt: command.at } }];
  }
}

function evolve(state: UserState, event: E): UserState {
  switch (event.type) {
    case 'identity.UserRegistered': {
      const d = event.data;
      return {
        ...state,
        userId: d.userId,
        emailHash: d.emailHash || null,
        emailSealed: d.emailSealed,
        passwordHashSealed: d.passwordHashSealed,
        roles: d.roles.filter(isRole),
      };
    }
    case 'identity.PasswordChanged':
      // Any new password spends a pending reset: its token is single-use.
      return { ...state, passwordHashSealed: event.data.passwordHashSealed, passwordReset: null };
    case 'identity.PasswordResetRequested':
      return { ...state, passwordReset: { tokenHash: event.data.tokenHash, expiresAt: event.data.expiresAt } };
    case 'identity.NotificationSettingsChanged': {
      const { disabled, quietStart, quietEnd, digestMinutes } = event.data;
      return { ...state, notificationSettings: { disabled, quietStart, quietEnd, digestMinutes } };
    }
    case 'identity.EmailVerificationRequested':
      return { ...state, verification: { tokenHash: event.data.tokenHash, expiresAt: event.data.expiresAt } };
    case 'identity.EmailVerified':
      return { ...state, emailVerified: true, verification: null };
    case 'identity.EmailChanged':
      return { ...state, emailHash: event.data.emailHash, emailSealed: event.data.emailSealed, emailVerified: false, verification: null };
    case 'identity.RoleGranted':
      return isRole(event.data.role) ? { ...state, roles: [...state.roles, event.data.role] } : state;
    case 'identity.RoleRevoked':
      return { ...state, roles: state.roles.filter((r) => r !== event.data.role) };
    case 'identity.UserSuspended':
      return { ...state, status: 'suspended' };
    case 'identity.UserReinstated':
      return { ...state, status: 'active' };
    case 'identity.UserForgotten':
      return { ...initialState, userId: state.userId, status: 'forgotten', emailHash: state.emailHash };
    case 'identity.ProxyCredentialsIssued':
      return { ...state, credentialsGeneration: event.data.generation };
    case 'identity.PrivacySettingsChanged':
      return { ...state, privacy: { presence: asVisibility(event.data.presence), readReceipts: asVisibility(event.data.readReceipts) } };
    case 'identity.TimeZoneChanged':
      return { ...state, timeZone: event.data.timeZone };
    case 'identity.TotpEnabled':
      return { ...state, totp: { secretSealed: event.data.secretSealed, recoveryCodeHashes: event.data.recoveryCodeHashes, used: [] } };
    case 'identity.TotpDisabled':
      return { ...state, totp: null };
    case 'identity.UserRegistrationAbandoned':
      return { ...state, abandoned: true };
    case 'identity.RecoveryCodeUsed':
      return state.totp ? { ...state, totp: { ...state.totp, used: [...state.totp.used, event.data.index] } } : state;
  }
}


export const userDecider: Decider<UserState, UserCommand, UserEventKey> = { initialState, decide, evolve };
