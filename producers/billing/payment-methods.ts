/**
 * Users' saved payment methods (docs/billing-payment-methods.md): save one
 * from a provider token (the provider describes it: brand, last four,
 * expiry — the client's word is never taken for those), remove one, choose
 * the default, list them; and, for checkout and renewals, resolve the method
 * to charge from the log. The token and the card's details are sealed under
 * the person's key (producers/identity/crypto/person-keys.ts), as identity
 * seals personal fields: once the person is forgotten, neither the log nor
 * the read model names their card, and resolve() finds nothing to charge.
 * The token is in the log only: the read model and every answer leave it out.
 */
import type { Kysely, Selectable } from 'kysely';
import { uuidv7 } from '../../contracts/ids.js';
import type { Database, PaymentMethodTable } from '../../schema/database.js';
import { ContextDeps } from '../context-deps.js';
import { DomainError } from '../decider.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import type { PersonKeys } from '../identity/crypto/person-keys.js';
import type { Actor } from '../identity/identity-deps.js';
import { openForDisplay, openMethod, sealMethod } from './payment-method-details.js';
import { isExpired, methodOfToken, paymentMethodsDecider, savedMethod, tokenDigest, type PaymentMethodsCommand } from './payment-methods.decider.js';
import type { PaymentMethodDetails, PaymentProvider } from './providers/provider.js';
import type { ProviderRegistry } from './providers/manual.js';

const AGGREGATE = 'payment-methods';

export interface PaymentMethodView {
  id: string;
  provider: string;
  brand: string;
  last4: string;
  expMonth: number;
  expYear: number;
  isDefault: boolean;
  addedAt: string;
}

/** What a charge needs: Relaygrid's id, and the provider's reference to charge. */
export interface ResolvedPaymentMethod {
  paymentMethodId: string;
  provider: string;
  token: string;
}

/** The row as answered, its details opened with the person's key; undefined once they were forgotten. */
function view(r: Selectable<PaymentMethodTable>, key: Buffer | undefined): PaymentMethodView | undefined {
  const details = openForDisplay(key, r.user_id, r.details_sealed);
  if (!details) return undefined;
  const { brand, last4, expMonth, expYear } = details;
  return { id: r.id, provider: r.provider, brand, last4, expMonth, expYear, isDefault: r.is_default, addedAt: r.added_at.toISOString() };
}

type Describer = PaymentProvider & { describeMethod(token: string): Promise<PaymentMethodDetails> };

export class PaymentMethods {
  constructor(
    readonly deps: ContextDeps<'payment-methods'>,
    private readonly providers: ProviderRegistry,
    /** The keyring, on first use: a process that never saves or charges a card needs no RG_MASTER_KEY. */
    private readonly keyring: () => PersonKeys,
  ) {}

  static open(opts: { handler: CommandHandler; db: Kysely<Database>; providers: ProviderRegistry; keys: () => PersonKeys }): PaymentMethods {
    return new PaymentMethods(new ContextDeps('billing', opts.handler, opts.db), opts.providers, opts.keys);
  }

  private key(userId: string): Promise<Buffer | undefined> {
    return this.keyring().get(userId);
  }

  private decide(userId: string, command: PaymentMethodsCommand, actor: Actor) {
    return this.deps.decide(paymentMethodsDecider, AGGREGATE, userId, command, actor);
  }

  /** The providers that can describe a token: the only ones a method can be saved with (`manual` takes no card). */
  private describers(): Describer[] {
    return this.providers
      .names()
      .map((name) => this.providers.get(name))
      .filter((p): p is Describer => typeof p.describeMethod === 'function');
  }

  private describer(name: string): Describer {
    const describers = this.describers();
    const found = describers.find((p) => p.name === name);
    if (!found) {
      const have = describers.map((p) => p.name).join(', ') || 'none is configured here';
      throw new DomainError('invalid_payment_method', `provider: ${name} does not save payment methods (these do: ${have})`, { field: 'provider' });
    }
    return found;
  }

  /**
   * Saves a method from the provider's token. The same (provider, token) again
   * answers the method already saved (`created: false`); with makeDefault it
   * becomes the default. A forgotten person has no key: `user_forgotten`.
   */
  async add(userId: string, input: { provider: string; token: string; makeDefault?: boolean }, actor: Actor, now = new Date()): Promise<{ seq: number; id: string; created: boolean }> {
    const provider = this.describer(input.provider);
    const digest = tokenDigest(provider.name, input.token);
    // A second save of the same card asks nothing of the provider.
    const { state } = await this.deps.load(paymentMethodsDecider, AGGREGATE, userId);
    const known = methodOfToken(state, digest);
    const detailsSealed = known?.detailsSealed ?? (await this.sealNew(userId, provider, input.token, now));
    const paymentMethodId = uuidv7(now.getTime());
    const result = await this.decide(
      userId,
      { type: 'Add', userId, paymentMethodId, provider: provider.name, tokenDigest: digest, detailsSealed, makeDefault: input.makeDefault ?? false, at: now },
      actor,
    );
    const added = result.events.some((e) => e.type === 'billing.PaymentMethodAdded');
    // Not added: the card was saved already (perhaps by a concurrent request the retry saw).
    const id = added ? paymentMethodId : (methodOfToken(result.state, digest)?.paymentMethodId ?? paymentMethodId);
    return { seq: result.seq, id, created: added };
  }

  /** A card not saved yet: what the provider says of it, refused when expired, sealed with the token under the person's key. */
  private async sealNew(userId: string, provider: Describer, token: string, now: Date): Promise<Buffer> {
    const key = await this.key(userId);
    if (!key) throw new DomainError('user_forgotten', 'this account was deleted');
    const details = await provider.describeMethod(token);
    // Here and not in the decider: only the service has the plaintext the provider answered.
    if (isExpired(details, now)) throw new DomainError('payment_method_expired', 'the card has expired: save a current one', { field: 'token' });
    return sealMethod(key, userId, { ...details, token });
  }

  async remove(userId: string, paymentMethodId: string, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    return { seq: (await this.decide(userId, { type: 'Remove', userId, paymentMethodId, at: now }, actor)).seq };
  }

  async setDefault(userId: string, paymentMethodId: string, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    return { seq: (await this.decide(userId, { type: 'SetDefault', userId, paymentMethodId, at: now }, actor)).seq };
  }

  /** The user's methods, oldest first, from the read model; none for a forgotten person. */
  async list(userId: string): Promise<PaymentMethodView[]> {
    const rows = await this.deps.db.selectFrom('payment_methods').selectAll().where('user_id', '=', userId).where('removed_at', 'is', null).orderBy('added_at').orderBy('id').execute();
    const key = rows.length > 0 ? await this.key(userId) : undefined;
    return rows.map((r) => view(r, key)).filter((v) => v !== undefined);
  }

  /** One of the user's methods from the read model; someone else's or a removed one is not found, like an unknown id. */
  async view(userId: string, paymentMethodId: string): Promise<PaymentMethodView> {
    const row = await this.deps.db
      .selectFrom('payment_methods')
      .selectAll()
      .where('id', '=', paymentMethodId)
      .where('user_id', '=', userId)
      .where('removed_at', 'is', null)
      .executeTakeFirst();
    const found = row && view(row, await this.key(userId));
    if (!found) throw new DomainError('payment_method_not_found', 'no such payment method');
    return found;
  }

  /**
   * What checkout and renewals charge: the named method, or the user's
   * default when none is named, or null when the user has none. From the log,
   * not the read model: a method removed a moment ago must not be charged.
   * A forgotten person's token no longer opens: null, nothing to charge.
   */
  async resolve(userId: string, paymentMethodId: string | null): Promise<ResolvedPaymentMethod | null> {
    const { state } = await this.deps.load(paymentMethodsDecider, AGGREGATE, userId);
    const id = paymentMethodId ?? state.defaultId;
    if (id === null) return null;
    const { provider, detailsSealed } = savedMethod(state, id);
    const method = openMethod(await this.key(userId), userId, detailsSealed);
    return method && { paymentMethodId: id, provider, token: method.token };
  }
}
