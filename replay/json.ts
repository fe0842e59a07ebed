/**
 * JSON for people reading replay output: dates as ISO strings, 64-bit numbers
 * as strings, sealed or other bytes as their length only (a state dump is no
 * place to leak ciphertext or key material), sets as arrays.
 */
export function readableJson(value: unknown): string {
  return JSON.stringify(
    value,
    function replacer(this: unknown, key: string, v: unknown) {
      const raw = (this as Record<string, unknown>)[key];
      if (raw instanceof Date) return raw.toISOString();
      if (Buffer.isBuffer(raw) || raw instanceof Uint8Array) return `<${raw.length} bytes>`;
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Set) return [...(v as Set<unknown>)];
      if (v instanceof Map) return Object.fromEntries(v as Map<string, unknown>);
      return v;
    },
    2,
  );
}
