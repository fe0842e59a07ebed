/**
 * What admins and operators do to accounts: create (the first admin, too),
 * suspend, reinstate, grant and revoke roles, and issue or revoke API keys.
 * Each is an event with the acting admin as its actor.
 */
import { uuidv7 } from '../../contracts/ids.js';
import { DomainError } from '../decider.js';
import type { Accounts } from './accounts.js';
import { keepingAnAdmin } from './admin-guard.js';
import { apiKeyDecider } from './api-key.decider.js';
import { formatApiKey, newApiKeySecret } from './authentication.js';
import type { Actor, IdentityDeps } from './identity-deps.js';
import { ownerOfEmail } from './register-user.js';
import { isRole, type Role } from './roles.js';
import type { UserCommand } from './user.decider.js';

export class Administration {
  constructor(
    private readonly d: IdentityDeps,
    private readonly accounts: Accounts,
  ) {}

  private async decide(userId: string, command: UserCommand, actor: Actor): Promise<number> {
    return (await this.d.decideUser(userId, command, actor)).seq;
  }

  /**
   * Suspension ends every session and kills live access tokens; the fleet
   * revokes proxy access from the event. Nobody suspends themselves, and the
   * last active admin stays (admin-guard.ts).
   */
  async suspend(userId: string, reason: string, actor: Actor, now = new Date()): Promise<number> {
    const by = actor.actor.startsWith('user:') ? actor.actor.slice('user:'.length) : undefined;
    const seq = await keepingAnAdmin(this.d, userId, (otherActiveAdmins) => this.decide(userId, { type: 'Suspend', reason, by, otherActiveAdmins, at: now }, actor));
    await this.d.revocations.revokeUser(userId);
    await this.accounts.endSessions(userId, 'suspended', actor, { tokensRevoked: true });
    return seq;
  }

  reinstate(userId: string, actor: Actor, now = new Date()): Promise<number> {
    return this.decide(userId, { type: 'Reinstate', at: now }, actor);
  }

  grantRole(userId: string, role: string, actor: Actor, now = new Date()): Promise<number> {
    return this.decide(userId, { type: 'GrantRole', role, at: now }, actor);
  }

  /** Tokens minted with the role stop working at once; the user's next refresh carries the new set. The last active admin keeps `admin`. */
  async revokeRole(userId: string, role: string, actor: Actor, now = new Date()): Promise<number> {
    const revoke = (otherActiveAdmins?: number) => this.decide(userId, { type: 'RevokeRole', role, otherActiveAdmins, at: now }, actor);
    const seq = role === 'admin' ? await keepingAnAdmin(this.d, userId, revoke) : await revoke();
    await this.d.revocations.revokeUser(userId);
    return seq;
  }

  async issueApiKey(userId: string, name: string, roles: readonly string[], actor: Actor, now = new Date()): Promise<{ keyId: string; apiKey: string; seq: number }> {
    const unknown = roles.filter((r) => !isRole(r));
    if (unknown.length > 0) throw new DomainError('unknown_role', `roles: "${unknown.join('", "')}" is not a role`);
    const holder = await this.d.loadUser(userId);
    if (holder.status !== 'active') throw new DomainError('user_not_active', `the account is ${holder.status}`);
    const keyId = uuidv7(now.getTime());
    const { secret, hash } = newApiKeySecret();
    const result = await this.d.handler.handle(
      apiKeyDecider,
      this.d.handler.store.names.aggregate('identity', 'apikey', keyId),
      { type: 'IssueApiKey', keyId, userId, name, roles: roles as Role[], holderRoles: holder.roles, secretHash: hash, at: now },
      { meta: this.d.meta(actor), assumeNew: true },
    );
    return { keyId, apiKey: formatApiKey(keyId, secret), seq: result.seq };
  }

  async revokeApiKey(requesterId: string, keyId: string, asAdmin: boolean, actor: Actor, now = new Date()): Promise<number> {
    const result = await this.d.handler.handle(
      apiKeyDecider,
      this.d.handler.store.names.aggregate('identity', 'apikey', keyId),
      { type: 'RevokeApiKey', keyId, requesterId, asAdmin, at: now },
      { meta: this.d.meta(actor) },
    );
    return result.seq;
  }

  /** Resolves a user given by id or by email (the CLI accepts either). */
  async resolveUser(idOrEmail: string): Promise<string> {
    if (idOrEmail.includes('@')) {
      const owner = await ownerOfEmail(this.d.handler, this.d.emails.of(idOrEmail));
      if (!owner) throw new DomainError('user_not_found', `no user with email ${idOrEmail}`);
      return owner;
    }
    const state = await this.d.loadUser(idOrEmail);
    if (!state.userId) throw new DomainError('user_not_found', `no user ${idOrEmail}`);
    return idOrEmail;
  }
}
