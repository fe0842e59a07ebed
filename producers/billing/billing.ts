/**
 * The billing context as one object the API, the CLI, the ops service, the
 * workers and tests hold (docs/billing.md): checkout and quotes, payments,
 * fulfilment, refunds, invoices, and the read models' answers.
 */
import type { Kysely } from 'kysely';
import type { Database } from '../../schema/database.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import type { Plans } from '../plans/plans.js';
import { BillingDeps } from './billing-deps.js';
import { BillingQueries } from './billing-queries.js';
import { Checkout, type CouponBook } from './checkout.js';
import { Fulfilment } from './fulfilment.js';
import { Invoicing } from './invoicing.js';
import { DocumentNumbers } from './numbering.js';
import { Payments, type PaymentMethodResolver } from './payments.js';
import type { ProviderRegistry } from './providers/manual.js';
import { Refunds } from './refunds.js';
import { Renewals } from './renewals.js';
import { PlanChanges } from './plan-changes.js';
import type { TaxRates } from './tax.js';

export interface BillingOptions {
  handler: CommandHandler;
  db: Kysely<Database>;
  plans: Plans;
  providers: ProviderRegistry;
  methods: PaymentMethodResolver;
  coupons: CouponBook | null;
  taxRates: TaxRates;
  /** The seller's zone (RG_BILLING_TIME_ZONE): the year of an invoice number, the day of revenue. */
  timeZone: string;
}

export class Billing {
  readonly deps: BillingDeps;
  readonly numbers: DocumentNumbers;
  readonly invoicing: Invoicing;
  readonly fulfilment: Fulfilment;
  readonly payments: Payments;
  readonly checkout: Checkout;
  readonly refunds: Refunds;
  readonly renewals: Renewals;
  readonly planChanges: PlanChanges;
  readonly queries: BillingQueries;
  readonly timeZone: string;

  constructor(opts: BillingOptions) {
    this.timeZone = opts.timeZone;
    this.deps = new BillingDeps(opts.handler, opts.db);
    this.numbers = new DocumentNumbers(this.deps, opts.timeZone);
    this.invoicing = new Invoicing(this.deps, this.numbers);
    this.fulfilment = new Fulfilment(this.deps, this.invoicing, opts.plans.subscriptions);
    this.payments = new Payments(this.deps, opts.providers, opts.methods, this.fulfilment, this.invoicing, opts.coupons);
    this.checkout = new Checkout(this.deps, { catalogue: opts.plans.catalogue, subscriptions: opts.plans.subscriptions, payments: this.payments, methods: opts.methods, coupons: opts.coupons, taxRates: opts.taxRates });
    this.refunds = new Refunds(this.deps, opts.providers, this.invoicing);
    this.renewals = new Renewals(this.deps, { catalogue: opts.plans.catalogue, subscriptions: opts.plans.subscriptions, payments: this.payments, fulfilment: this.fulfilment, invoicing: this.invoicing, methods: opts.methods, taxRates: opts.taxRates });
    this.planChanges = new PlanChanges(this.deps, { catalogue: opts.plans.catalogue, subscriptions: opts.plans.subscriptions, payments: this.payments, methods: opts.methods, taxRates: opts.taxRates });
    this.queries = new BillingQueries(opts.db, opts.timeZone);
  }
}
