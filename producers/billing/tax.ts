/**
 * Tax rates per country: configuration (RG_TAX_RATES=`DE=19,FR=20,HU=27,CH=8.1`),
 * percent with at most two decimals, held as basis points (19% = 1900) so no
 * float ever touches money. A country that is not listed pays no tax; with any
 * rate configured the buyer's country is required, or leaving it out would be
 * a way around the tax.
 */
import { DomainError } from '../decider.js';

export type TaxRates = ReadonlyMap<string, number>;

const ENTRY = /^([A-Z]{2})=(\d{1,2})(?:\.(\d{1,2}))?$/;

/** Parses the configuration; throws naming the bad entry (never the whole value). */
export function parseTaxRates(text: string | undefined): TaxRates {
  const rates = new Map<string, number>();
  for (const raw of (text ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = ENTRY.exec(raw);
    if (!m?.[1] || !m[2]) throw new Error(`"${raw}" is not COUNTRY=PERCENT (two upper-case letters, a percent below 100 with at most two decimals)`);
    rates.set(m[1], Number(m[2]) * 100 + Number((m[3] ?? '0').padEnd(2, '0')));
  }
  return rates;
}

const COUNTRY = /^[A-Z]{2}$/;

/** The rate for a buyer's country (ISO 3166-1 alpha-2) as a checkout or a quote gives it. */
export function taxFor(rates: TaxRates, country: unknown, code: string): { country: string | null; rateBasisPoints: number } {
  if (country === undefined || country === null) {
    if (rates.size > 0) throw new DomainError(code, 'country: required, tax depends on it (ISO 3166-1 alpha-2, e.g. DE)', { field: 'country' });
    return { country: null, rateBasisPoints: 0 };
  }
  if (typeof country !== 'string' || !COUNTRY.test(country)) throw new DomainError(code, 'country: must be an ISO 3166-1 alpha-2 code such as DE', { field: 'country' });
  return { country, rateBasisPoints: rates.get(country) ?? 0 };
}
