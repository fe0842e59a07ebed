/**
 * Canonical JSON: object keys sorted recursively, arrays kept in order, no
 * whitespace. Two configurations that differ only in key order (a spread here,
 * a property added later there) serialize to the same bytes and hash alike.
 */
import { createHash } from 'node:crypto';

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) sorted[key] = canonical((value as Record<string, unknown>)[key]);
    return sorted;
  }
  return value;
}

export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonical(value));
}

/** `sha256-<hex>` of the canonical JSON of `value`. */
export function canonicalHash(value: unknown): string {
  return `sha256-${createHash('sha256').update(canonicalJson(value)).digest('hex')}`;
}
