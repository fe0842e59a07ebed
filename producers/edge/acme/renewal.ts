/**
 * When to renew an ACME certificate, and when to try again after a failed
 * attempt. Pure: the certificate decider (certificate.decider.ts) records
 * both in the site's certificate events, and the ACME scheduler
 * (workers/edge/acme-scheduler.ts) fires what they make due.
 *
 * Two thirds of the lifetime, as Let's Encrypt advises for clients without
 * ACME Renewal Information: a 90-day certificate renews with 30 days left, a
 * 6-day one with 2, so one bad day of the CA or of our edge never lets a
 * certificate lapse.
 */

/** Backoff after the first failed attempt. */
export const RETRY_BASE_MS = 60_000;
/** No wait between attempts is longer than this: a certificate close to expiry must keep being tried. */
export const RETRY_CAP_MS = 6 * 3_600_000;

/** Two thirds of the way from `notBefore` to `notAfter`. */
export function renewalDueAt(notBefore: Date, notAfter: Date): Date {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  if (!(lifetime > 0)) throw new RangeError('renewalDueAt: notAfter must be after notBefore');
  return new Date(notBefore.getTime() + Math.floor((lifetime * 2) / 3));
}

/**
 * When to try again after `attempt` failed attempts in a row (1 = the first
 * failure): 1 min, 2, 4, … doubling, capped at 6 h. `baseMs` replaces the
 * first minute (tests run the same doubling in milliseconds).
 */
export function nextRetryAt(attempt: number, now: Date, baseMs = RETRY_BASE_MS): Date {
  if (!Number.isInteger(attempt) || attempt < 1) throw new RangeError('nextRetryAt: attempt is a whole number from 1');
  // 2^9 min already exceeds the cap; clamping the exponent keeps the arithmetic finite for any attempt count.
  const delay = Math.min(baseMs * 2 ** Math.min(attempt - 1, 20), RETRY_CAP_MS);
  return new Date(now.getTime() + delay);
}
