/**
 * Users' saved payment methods (docs/billing-payment-methods.md): save one
 * from a provider token (the provider describes it: brand, last four,
 * expiry — the client's word is never taken for those), remove one, choose
 * the default, list them; and, for checkout and renewals, resolve the method
 * to charge from the log. The token is in the log only: the read model and
 * every answer leave it out.
 */
import type { Kysely, Selectable } from 'kysely';
import { uuidv7 } from '../../contracts/ids.js';
import type { Database, PaymentMethodTable } from '../../schema/database.js';
import { ContextDeps } from '../context-deps.js';
import { DomainError } from '../decider.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import type { Actor } from '../identity/identity-deps.js';
import { methodOfToken, paymentMethodsDecider, savedMethod, type PaymentMethodsCommand } from './payment-methods.decider.js';
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

function view(r: Selectable<PaymentMethodTable>): PaymentMethodView {
  return { id: r.id, provider: r.provider, brand: r.brand, last4: r.last4, expMonth: r.exp_month, expYear: r.exp_year, isDefault: r.is_default, addedAt: r.added_at.toISOString() };
}

type Describer = PaymentProvider & { describeMethod(token: string): Promise<PaymentMethodDetails> };

export class PaymentMethods {
  constructor(
    readonly deps: ContextDeps<'payment-methods'>,
    private readonly providers: ProviderRegistry,
  ) {}

  static open(opts: { handler: CommandHandler; db: Kysely<Database>; providers: ProviderRegistry }): PaymentMethods {
    return new PaymentMethods(new ContextDeps('billing', opts.handler, opts.db), opts.providers);
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
   * becomes the default.
   */
  async add(userId: string, input: { provider: string; token: string; makeDefault?: boolean }, actor: Actor, now = new Date()): Promise<{ seq: number; id: string; created: boolean }> {
    const provider = this.describer(input.provider);
    // A second save of the same card asks nothing of the provider.
    const { state } = await this.deps.load(paymentMethodsDecider, AGGREGATE, userId);
    const known = methodOfToken(state, provider.name, input.token);
    const details = known ?? (await provider.describeMethod(input.token));
    const paymentMethodId = uuidv7(now.getTime());
    const result = await this.decide(
      userId,
      { type: 'Add', userId, paymentMethodId, provider: provider.name, token: input.token, details, makeDefault: input.makeDefault ?? false, at: now },
      actor,
    );
    const added = result.events.some((e) => e.type === 'billing.PaymentMethodAdded');
    // Not added: the card was saved already (perhaps by a concurrent request the retry saw).
    const id = added ? paymentMethodId : (methodOfToken(result.state, provider.name, input.token)?.paymentMethodId ?? paymentMethodId);
    return { seq: result.seq, id, created: added };
  }

  async remove(userId: string, paymentMethodId: string, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    return { seq: (await this.decide(userId, { type: 'Remove', userId, paymentMethodId, at: now }, actor)).seq };
  }

  async setDefault(userId: string, paymentMethodId: string, actor: Actor, now = new Date()): Promise<{ seq: number }> {
    return { seq: (await this.decide(userId, { type: 'SetDefault', userId, paymentMethodId, at: now }, actor)).seq };
  }

  /** The user's methods, oldest first, from the read model. */
  async list(userId: string): Promise<PaymentMethodView[]> {
    const rows = await this.deps.db.selectFrom('payment_methods').selectAll().where('user_id', '=', userId).where('removed_at', 'is', null).orderBy('added_at').orderBy('id').execute();
    return rows.map(view);
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
    if (!row) throw new DomainError('payment_method_not_found', 'no such payment method');
    return view(row);
  }

  /**
   * What checkout and renewals charge: the named method, or the user's
   * default when none is named, or null when the user has none. From the log,
   * not the read model: a method removed a moment ago must not be charged.
   */
  async resolve(userId: string, paymentMethodId: string | null): Promise<ResolvedPaymentMethod | null> {
    const { state } = await this.deps.load(paymentMethodsDecider, AGGREGATE, userId);
    const id = paymentMethodId ?? state.defaultId;
    if (id === null) return null;
    const { provider, token } = savedMethod(state, id);
    return { paymentMethodId: id, provider, token };
  }
}
