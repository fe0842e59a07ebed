/**
 * Shared by bench/fleet-rollout.ts and bench/usage-ticks.ts: a clock that processes of this machine
 * agree on, and a logger that counts instead of writing. Child processes and
 * percentiles are bench/processes.ts.
 *
 * Kept apart from bench/messenger-support.ts on purpose: importing that file
 * loads the messenger gateway (uWS, socket.io) into the fleet benches.
 */
import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';

/**
 * Milliseconds since the epoch with sub-millisecond resolution. Both terms are
 * taken from the same wall clock at process start, so a time taken in one
 * process can be subtracted from one taken in another (the error is the
 * clock's slew during the run: microseconds).
 */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * A logger that writes nothing but counts lines by message (with the first
 * error text seen for each), so a bench can report what the code under test
 * complained about without printing thousands of lines.
 */
export function countingLogger(level = process.env['LOG_LEVEL'] ?? 'warn'): { log: Logger; counts: () => Record<string, { n: number; first: string }> } {
  const seen = new Map<string, { n: number; first: string }>();
  const log = pino(
    { level, base: null },
    {
      write: (line: string) => {
        let msg = '?';
        let detail = '';
        try {
          const parsed = JSON.parse(line) as { msg?: string; err?: { message?: string } };
          msg = parsed.msg ?? '?';
          detail = parsed.err?.message ?? '';
        } catch {
          msg = line.slice(0, 80);
        }
        const entry = seen.get(msg);
        if (entry) entry.n++;
        else seen.set(msg, { n: 1, first: detail });
      },
    },
  );
  return { log, counts: () => Object.fromEntries(seen) };
}

/** Merges log counts of several processes. */
export function mergeCounts(all: readonly Record<string, { n: number; first: string }>[]): Record<string, { n: number; first: string }> {
  const out: Record<string, { n: number; first: string }> = {};
  for (const counts of all) {
    for (const [msg, { n, first }] of Object.entries(counts)) {
      const entry = out[msg];
      if (entry) entry.n += n;
      else out[msg] = { n, first };
    }
  }
  return out;
}

export function formatCounts(counts: Record<string, { n: number; first: string }>): string {
  const entries = Object.entries(counts);
  if (entries.length === 0) return 'none';
  return entries.map(([msg, { n, first }]) => `${n} × "${msg}"${first ? ` (first: ${first})` : ''}`).join('; ');
}

export const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) : '—');
