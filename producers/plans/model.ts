/**
 * What a plan is: its terms, as the plan decider, the subscription decider
 * and the read models share them, and how they travel in events (flat Avro
 * fields, contracts/plans/*.avsc) and arrive from operators (checked here,
 * each refusal a DomainError `invalid_plan` naming the field).
 */
import type { PlanCreatedV2 } from '../../contracts/catalogue.generated.js';
import { assertToken, InvalidSubjectTokenError } from '../../infra/naming.js';
import { DomainError } from '../decider.js';
import { PROFILE_KINDS, type ProfileKind } from '../fleet/model.js';
import { RESET_STRATEGIES, type ResetStrategy } from './periods.js';

export const OVERAGES = ['block', 'soft'] as const;
export type Overage = (typeof OVERAGES)[number];

/** How long a subscription lasts: forever, fixed days from its start, or fixed days from first traffic (or from the hold's timeout). */
export type Validity = { kind: 'none' } | { kind: 'days'; days: number } | { kind: 'on_hold'; days: number; timeoutDays: number };
export const VALIDITY_KINDS = ['none', 'days', 'on_hold'] as const;

export interface Price {
  /** Integer minor units (cents for EUR, yen for JPY). */
  amountMinor: bigint;
  /** ISO 4217. */
  currency: string;
}

export interface PlanTerms {
  /** Bytes per period; null = unlimited. */
  allowanceBytes: bigint | null;
  resetStrategy: ResetStrategy;
  validity: Validity;
  /** Concurrent distinct client IPs; null = unlimited. */
  ipLimit: number | null;
  /** Nodes carrying any of these labels; empty = every node. */
  nodeLabels: string[];
  /** Inbound kinds; empty = every kind. */
  inboundKinds: ProfileKind[];
  price: Price;
  nextPlanId: string | null;
  overage: Overage;
  /** Soft overage: the price of each GiB above the allowance (minor units of price.currency), billed with the next renewal; null: not charged. */
  overagePriceMinor: bigint | null;
}

/** The terms a period of a subscription runs on: what enforcement and metering read from `subscriptions`. */
export type PeriodTerms = Pick<PlanTerms, 'allowanceBytes' | 'resetStrategy' | 'ipLimit' | 'nodeLabels' | 'inboundKinds' | 'overage'>;

export type TermsFields = Omit<PlanCreatedV2, 'planId' | 'name' | 'createdAt'>;

export function termsToFields(t: PlanTerms): TermsFields {
  return {
    allowanceBytes: t.allowanceBytes,
    resetStrategy: t.resetStrategy,
    validityKind: t.validity.kind,
    validityDays: t.validity.kind === 'none' ? null : t.validity.days,
    onHoldTimeoutDays: t.validity.kind === 'on_hold' ? t.validity.timeoutDays : null,
    ipLimit: t.ipLimit,
    nodeLabels: t.nodeLabels,
    inboundKinds: t.inboundKinds,
    priceMinor: t.price.amountMinor,
    currency: t.price.currency,
    nextPlanId: t.nextPlanId,
    overage: t.overage,
    overagePriceMinor: t.overagePriceMinor,
  };
}

export function validityOf(kind: string, days: number | null, timeoutDays: number | null): Validity {
  if (kind === 'days') return { kind, days: days ?? 0 };
  if (kind === 'on_hold') return { kind, days: days ?? 0, timeoutDays: timeoutDays ?? 0 };
  return { kind: 'none' };
}

export function termsFromFields(f: TermsFields): PlanTerms {
  return {
    allowanceBytes: f.allowanceBytes,
    resetStrategy: f.resetStrategy as ResetStrategy,
    validity: validityOf(f.validityKind, f.validityDays, f.onHoldTimeoutDays),
    ipLimit: f.ipLimit,
    nodeLabels: f.nodeLabels,
    inboundKinds: f.inboundKinds as ProfileKind[],
    price: { amountMinor: f.priceMinor, currency: f.currency },
    nextPlanId: f.nextPlanId,
    overage: f.overage as Overage,
    overagePriceMinor: f.overagePriceMinor,
  };
}

export function periodTerms(t: PeriodTerms): PeriodTerms {
  const { allowanceBytes, resetStrategy, ipLimit, nodeLabels, inboundKinds, overage } = t;
  return { allowanceBytes, resetStrategy, ipLimit, nodeLabels, inboundKinds, overage };
}

// ---- operator input -------------------------------------------------------

const MAX_DAYS = 36_600;
const MAX_BYTES = 2n ** 63n - 1n;
const LABEL = /^[a-z0-9_-]{1,64}$/;
const BYTES = /^(0|[1-9]\d{0,18})$/;
let currencies: ReadonlySet<string> | undefined;

function invalid(field: string, message: string, code = 'invalid_plan'): never {
  throw new DomainError(code, `${field}: ${message}`, { field });
}

/** A plan id is chosen by the operator and becomes a subject token. */
export function checkPlanId(value: unknown, field = 'planId'): string {
  if (typeof value !== 'string') invalid(field, 'must be a string');
  try {
    assertToken('plan id', value);
  } catch (err) {
    if (err instanceof InvalidSubjectTokenError) invalid(field, "must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'");
    throw err;
  }
  return value;
}

/** Bytes as JSON carries them: a decimal string (JSON numbers lose precision past 2^53). */
export function parseBytes(value: unknown, field: string, code = 'invalid_plan'): bigint {
  if (typeof value !== 'string' || !BYTES.test(value) || BigInt(value) > MAX_BYTES) invalid(field, 'must be a decimal string of a whole number of bytes, 0 to 2^63-1', code);
  return BigInt(value);
}

export function checkCurrency(value: unknown, field = 'price.currency'): string {
  currencies ??= new Set(Intl.supportedValuesOf('currency'));
  if (typeof value !== 'string' || !currencies.has(value)) invalid(field, 'must be an ISO 4217 currency code such as EUR or USD');
  return value;
}

function days(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_DAYS) invalid(field, `must be a whole number of days, 1 to ${MAX_DAYS}`);
  return value;
}

function validity(value: unknown): Validity {
  if (value === undefined || value === null) return { kind: 'none' };
  const v = value as Record<string, unknown>;
  if (v['kind'] === 'none') return { kind: 'none' };
  if (v['kind'] === 'days') return { kind: 'days', days: days(v['days'], 'validity.days') };
  if (v['kind'] === 'on_hold') return { kind: 'on_hold', days: days(v['days'], 'validity.days'), timeoutDays: days(v['timeoutDays'], 'validity.timeoutDays') };
  return invalid('validity.kind', `must be one of ${VALIDITY_KINDS.join(', ')}`);
}

function oneOf<T extends string>(value: unknown, allowed: readonly T[], field: string, fallback?: T): T {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) invalid(field, `must be one of ${allowed.join(', ')}`);
  return value as T;
}

function list<T extends string>(value: unknown, field: string, check: (item: unknown) => T): T[] {
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.length > 64) invalid(field, 'must be a list of at most 64');
  return [...new Set(value.map(check))].sort();
}

export interface PlanInput {
  name: string;
  terms: PlanTerms;
}

/**
 * A plan's name and terms from an operator's JSON (the API's body, the CLI's
 * flags, the ops service's request). Whether `nextPlanId` exists is the
 * catalogue's to check, against the log.
 */
export function validatePlanInput(input: Record<string, unknown>): PlanInput {
  const name = input['name'];
  if (typeof name !== 'string' || name.trim() === '' || name.length > 100) invalid('name', 'must be 1-100 characters');
  const price = (input['price'] ?? {}) as Record<string, unknown>;
  const amount = price['amountMinor'];
  if (typeof amount !== 'number' || !Number.isSafeInteger(amount) || amount < 0) invalid('price.amountMinor', 'must be a whole number of minor units, 0 or more');
  const ipLimit = input['ipLimit'] ?? null;
  if (ipLimit !== null && (typeof ipLimit !== 'number' || !Number.isInteger(ipLimit) || ipLimit < 1 || ipLimit > 10_000)) invalid('ipLimit', 'must be null (unlimited) or 1 to 10000');
  const next = input['nextPlanId'] ?? null;
  const overage = oneOf(input['overage'], OVERAGES, 'overage', 'block');
  const overagePrice = input['overagePriceMinor'] ?? null;
  if (overagePrice !== null && (typeof overagePrice !== 'number' || !Number.isSafeInteger(overagePrice) || overagePrice < 0)) invalid('overagePriceMinor', 'must be null or a whole number of minor units per GiB, 0 or more');
  if (overagePrice !== null && overage !== 'soft') invalid('overagePriceMinor', "only a soft overage is charged: set overage to 'soft' or leave the price out");
  return {
    name: name.trim(),
    terms: {
      allowanceBytes: input['allowanceBytes'] === null || input['allowanceBytes'] === undefined ? null : parseBytes(input['allowanceBytes'], 'allowanceBytes'),
      resetStrategy: oneOf(input['resetStrategy'], RESET_STRATEGIES, 'resetStrategy', 'none'),
      validity: validity(input['validity']),
      ipLimit: ipLimit,
      nodeLabels: list(input['nodeLabels'], 'nodeLabels', (l) => (typeof l === 'string' && LABEL.test(l) ? l : invalid('nodeLabels', 'labels are 1-64 of a-z, 0-9, "_" or "-"'))),
      inboundKinds: list(input['inboundKinds'], 'inboundKinds', (k) => oneOf(k, PROFILE_KINDS, 'inboundKinds')),
      price: { amountMinor: BigInt(amount), currency: checkCurrency(price['currency']) },
      nextPlanId: next === null ? null : checkPlanId(next, 'nextPlanId'),
      overage,
      overagePriceMinor: overagePrice === null ? null : BigInt(overagePrice),
    },
  };
}
