/**
 * RG_TAX_RATES, RG_BILLING_TIME_ZONE, RG_BILLING_SELLER_*: what billing needs
 * to price and issue documents (docs/billing.md#configuration).
 */
// config.ts imports this module back: ConfigError is only used at call time, after both have loaded.
import { ConfigError } from './config.js';
import { checkTimeZone } from '../producers/plans/periods.js';
import { parseTaxRates, type TaxRates } from '../producers/billing/tax.js';

type Env = Record<string, string | undefined>;

export interface BillingConfig {
  taxRates: TaxRates;
  /** The seller's IANA zone: the year of an invoice number, the day revenue is counted on. */
  timeZone: string;
  seller: { name: string; lines: string[]; taxId: string | null };
}

export function billingConfig(env: Env): BillingConfig {
  let taxRates: TaxRates;
  try {
    taxRates = parseTaxRates(env['RG_TAX_RATES']);
  } catch (err) {
    throw new ConfigError('RG_TAX_RATES', (err as Error).message);
  }
  const zone = env['RG_BILLING_TIME_ZONE']?.trim() || 'UTC';
  try {
    checkTimeZone(zone);
  } catch {
    throw new ConfigError('RG_BILLING_TIME_ZONE', `"${zone}" is not an IANA time zone such as Europe/Berlin`);
  }
  const lines = (env['RG_BILLING_SELLER_ADDRESS'] ?? '').split('|').map((l) => l.trim()).filter(Boolean);
  return { taxRates, timeZone: zone, seller: { name: env['RG_BILLING_SELLER_NAME']?.trim() || 'Relaygrid', lines, taxId: env['RG_BILLING_SELLER_TAX_ID']?.trim() || null } };
}
