/**
 * A user's saved payment methods (`<ns>.evt.billing.payment-methods.<userId>`):
 * one aggregate per user, so "exactly one default while any is left" is
 * decided in one place. The first method becomes the default; removing the
 * default hands it to the most recently added remaining one (or to none);
 * saving the same provider token twice answers the method already saved; at
 * most MAX_PAYMENT_METHODS. The token and the card's details are sealed under
 * the person's key by the service (producers/billing/payment-methods.ts),
 * which also refuses an expired card: it has the provider's plaintext, this
 * decider only the token's digest and the sealed bytes it passes on.
 */
import { createHash } from 'node:crypto';
import type { DomainEvent } from '../../contracts/envelope.js';
import type { PaymentMethodDetails } from './providers/provider.js';
import { DomainError, type Decider } from '../decider.js';

export type PaymentMethodsEventKey = 'billing.PaymentMethodAdded' | 'billing.PaymentMethodRemoved' | 'billing.DefaultPaymentMethodChanged';

/** Enough for a few cards and a spare; more is a sign of card testing, not of a customer. */
export const MAX_PAYMENT_METHODS = 10;

export interface SavedPaymentMethod {
  paymentMethodId: string;
  provider: string;
  tokenDigest: string;
  /** The token and the card's details under the person's key (./payment-method-details.ts): only the service opens them. */
  detailsSealed: Buffer;
  addedAt: Date;
}

export interface PaymentMethodsState {
  /** The methods not removed, in the order they were added (the last is the most recent). */
  methods: readonly SavedPaymentMethod[];
  defaultId: string | null;
}

export type PaymentMethodsCommand =
  | { type: 'Add'; userId: string; paymentMethodId: string; provider: string; tokenDigest: string; detailsSealed: Buffer; makeDefault: boolean; at: Date }
  | { type: 'Remove'; userId: string; paymentMethodId: string; at: Date }
  | { type: 'SetDefault'; userId: string; paymentMethodId: string; at: Date };

type E = DomainEvent<PaymentMethodsEventKey>;

/** A card is good through the last day of its expiry month (UTC, as providers count it). */
export function isExpired(details: Pick<PaymentMethodDetails, 'expMonth' | 'expYear'>, now: Date): boolean {
  const year = now.getUTCFullYear();
  return details.expYear < year || (details.expYear === year && details.expMonth < now.getUTCMonth() + 1);
}

const notFound = () => new DomainError('payment_method_not_found', 'no such payment method');

export function savedMethod(state: PaymentMethodsState, paymentMethodId: string): SavedPaymentMethod {
  const method = state.methods.find((m) => m.paymentMethodId === paymentMethodId);
  // A removed method, and another user's (not in this aggregate at all), answer like an unknown id.
  if (!method) throw notFound();
  return method;
}

/** How the log names a provider token without holding it: the same card saved twice has the same digest. */
export function tokenDigest(provider: string, token: string): string {
  return createHash('sha256').update(`${provider}\n${token}`).digest('hex');
}

/** The saved method with this token digest, if any: what a second save of the same card answers. */
export function methodOfToken(state: PaymentMethodsState, digest: string): SavedPaymentMethod | undefined {
  return state.methods.find((m) => m.tokenDigest === digest);
}

function changed(userId: string, paymentMethodId: string | null, at: Date): E {
  return { type: 'billing.DefaultPaymentMethodChanged', data: { userId, paymentMethodId, changedAt: at } };
}

function add(command: Extract<PaymentMethodsCommand, { type: 'Add' }>, state: PaymentMethodsState): E[] {
  const existing = methodOfToken(state, command.tokenDigest);
  if (existing) {
    // Idempotent: the same card saved again is the method already saved; asking for it as default again still does that.
    return command.makeDefault && state.defaultId !== existing.paymentMethodId ? [changed(command.userId, existing.paymentMethodId, command.at)] : [];
  }
  const { userId, paymentMethodId, provider, tokenDigest, detailsSealed, at } = command;
  if (state.methods.length >= MAX_PAYMENT_METHODS) throw new DomainError('payment_method_limit', `at most ${MAX_PAYMENT_METHODS} payment methods: remove one first`);
  const makeDefault = command.makeDefault || state.defaultId === null;
  return [{ type: 'billing.PaymentMethodAdded', data: { userId, paymentMethodId, provider, tokenDigest, detailsSealed, makeDefault, addedAt: at } }];
}

function decide(command: PaymentMethodsCommand, state: PaymentMethodsState): E[] {
  switch (command.type) {
    case 'Add':
      return add(command, state);
    case 'Remove': {
      const { userId, paymentMethodId, at } = command;
      savedMethod(state, paymentMethodId);
      const removed: E = { type: 'billing.PaymentMethodRemoved', data: { userId, paymentMethodId, removedAt: at } };
      if (state.defaultId !== paymentMethodId) return [removed];
      const next = state.methods.filter((m) => m.paymentMethodId !== paymentMethodId).at(-1);
      return [removed, changed(userId, next?.paymentMethodId ?? null, at)];
    }
    case 'SetDefault': {
      savedMethod(state, command.paymentMethodId);
      return state.defaultId === command.paymentMethodId ? [] : [changed(command.userId, command.paymentMethodId, command.at)];
    }
  }
}

function evolve(state: PaymentMethodsState, event: E): PaymentMethodsState {
  switch (event.type) {
    case 'billing.PaymentMethodAdded': {
      const { paymentMethodId, provider, tokenDigest, detailsSealed, makeDefault, addedAt } = event.data;
      return { methods: [...state.methods, { paymentMethodId, provider, tokenDigest, detailsSealed, addedAt }], defaultId: makeDefault ? paymentMethodId : state.defaultId };
    }
    case 'billing.PaymentMethodRemoved': {
      const id = event.data.paymentMethodId;
      return { methods: state.methods.filter((m) => m.paymentMethodId !== id), defaultId: state.defaultId === id ? null : state.defaultId };
    }
    case 'billing.DefaultPaymentMethodChanged':
      return { ...state, defaultId: event.data.paymentMethodId };
  }
}

export const paymentMethodsDecider: Decider<PaymentMethodsState, PaymentMethodsCommand, PaymentMethodsEventKey> = {
  initialState: { methods: [], defaultId: null },
  decide,
  evolve,
};
