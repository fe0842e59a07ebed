/**
 * Everything the identity services share: the command handler, the keyring,
 * hashing, tokens and the Redis-backed session, revocation and limit stores,
 * plus the few helpers every service needs (subjects, event metadata, sealing
 * under a person's key, loading a user).
 */
import type { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { EventMeta } from '../../contracts/envelope.js';
import type { AuthConfig } from '../../infra/config.js';
import type { Logger } from '../../infra/logger.js';
import type { Nats } from '../../infra/nats/connection.js';
import type { Database } from '../../schema/database.js';
import { DomainError } from '../decider.js';
import type { CommandHandler, HandleResult } from '../event-store/command-handler.js';
import { AbuseLimits } from './abuse-limits.js';
import { AuthState } from './auth-state.js';
import { PersonKeys } from './crypto/person-keys.js';
import { seal } from './crypto/sealing.js';
import { EmailIndex } from './email.js';
import { PasswordHasher } from './passwords.js';
import { AccessTokens } from './tokens/access-tokens.js';
import { RefreshSessions } from './tokens/refresh-sessions.js';
import { Revocations } from './tokens/revocations.js';
import { sessionDecider, type SessionEndReason } from './session.decider.js';
import { userDecider, type UserCommand, type UserEventKey, type UserState } from './user.decider.js';

/** Who is acting: a person through a session or an API key, or an operator at the CLI. */
export interface Actor {
  /** `user:<id>` or `operator:<name>`: copied into every event's `ce-actor`. */
  actor: string;
  correlationId?: string;
  traceparent?: string;
}

export class IdentityDeps {
  readonly keys: PersonKeys;
  readonly emails: EmailIndex;
  readonly passwords = new PasswordHasher();
  readonly tokens: AccessTokens;
  readonly sessions: RefreshSessions;
  readonly revocations: Revocations;
  readonly limits: AbuseLimits;
  readonly authState: AuthState;

  constructor(
    readonly handler: CommandHandler,
    readonly db: Kysely<Database>,
    redis: Redis,
    nats: Nats,
    masterKey: Buffer,
    readonly auth: AuthConfig,
    readonly log: Logger,
  ) {
    const ns = handler.store.names.namespace;
    this.keys = new PersonKeys(db, masterKey);
    this.emails = new EmailIndex(masterKey);
    this.tokens = new AccessTokens(masterKey, auth.accessTokenTtlSeconds);
    this.sessions = new RefreshSessions(redis, ns, auth.refreshTokenTtlSeconds);
    this.revocations = new Revocations({ nats, redis, namespace: ns, tokenTtlSeconds: auth.accessTokenTtlSeconds });
    this.limits = new AbuseLimits(redis, ns);
    this.authState = new AuthState(redis, ns);
  }

  userSubject(userId: string): string {
    return this.handler.store.names.aggregate('identity', 'user', userId);
  }

  meta(actor: Actor): EventMeta {
    return { source: 'relaygrid/identity', actor: actor.actor, correlationId: actor.correlationId, traceparent: actor.traceparent };
  }

  /** One decision on the user aggregate, with the actor in the events' metadata. */
  decideUser(userId: string, command: UserCommand, actor: Actor, assumeNew = false): Promise<HandleResult<UserState, UserEventKey>> {
    return this.handler.handle(userDecider, this.userSubject(userId), command, { meta: this.meta(actor), assumeNew });
  }

  sessionSubject(sessionId: string): string {
    return this.handler.store.names.aggregate('identity', 'session', sessionId);
  }

  /**
   * A session is over: the log records why, and its access tokens die
   * everywhere now (unless the caller revoked every token of the user already).
   */
  async endSession(sessionId: string, reason: SessionEndReason, actor: Actor, opts: { revokeTokens?: boolean } = {}): Promise<void> {
    if (opts.revokeTokens ?? true) await this.revocations.revokeSession(sessionId);
    await this.handler.handle(sessionDecider, this.sessionSubject(sessionId), { type: 'EndSession', sessionId, reason, at: new Date() }, { meta: this.meta(actor) });
  }

  async loadUser(userId: string): Promise<UserState> {
    return (await this.handler.load(userDecider, this.userSubject(userId))).state;
  }

  /**
   * Seals under the person's key, fetched once for every value an operation
   * seals; a forgotten person has no key, and nothing may be written for them.
   */
  async sealerFor(userId: string): Promise<(plaintext: string) => Buffer> {
    const key = await this.keys.get(userId);
    if (!key) throw new DomainError('user_forgotten', 'this account was deleted');
    return (plaintext) => seal(key, userId, plaintext);
  }
}
