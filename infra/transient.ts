/**
 * Errors that say "the infrastructure is unavailable", not "this event is
 * bad". A projector retries these with backoff; anything else stops it.
 */
const NODE_NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN']);

export function isTransientInfraError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') {
    if (NODE_NETWORK_CODES.has(code)) return true;
    // Postgres SQLSTATE classes: 08 connection, 53 insufficient resources, 57 operator intervention, 40 serialization.
    if (/^(08|53|57|40)/.test(code)) return true;
  }
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect/i.test(err.message);
}
