/**
 * When a webhook is attempted: Standard Webhooks' schedule — at once, then
 * 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after the attempt before, 8
 * attempts over about 27.6 hours — each wait stretched or shrunk by up to
 * ±10 % at random, so that the retries of many deliveries that failed
 * together (a receiver's outage) do not all come back in the same second.
 */

/** The wait before attempt n (index n − 1): the first is at once. */
export const RETRY_DELAYS_MS: readonly number[] = [0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000];

export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length;

export const JITTER = 0.1;

/**
 * When the attempt after attempt `made` (1-based) is due, counted from when
 * attempt `made` started; null after the last attempt.
 */
export function nextAttemptAt(made: number, startedAt: Date, random: () => number = Math.random): Date | null {
  const delay = RETRY_DELAYS_MS[made];
  if (delay === undefined) return null;
  const factor = 1 - JITTER + 2 * JITTER * random();
  return new Date(startedAt.getTime() + Math.round(delay * factor));
}
