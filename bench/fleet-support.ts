/**
 * Shared by bench/fleet-rollout.ts, bench/usage-ticks.ts and bench/enforcement-reach.ts: a clock
 * that processes of this machine agree on, a logger that counts instead of writing, node names,
 * and the plan that puts users on nodes. Child processes and
 * percentiles are bench/processes.ts.
 *
 * Kept apart from bench/messenger-support.ts on purpose: importing that file
 * loads the messenger gateway (uWS, socket.io) into the fleet benches.
 */
import { performance } from 'node:perf_hooks';
import { pino, type Logger } from 'pino';
import type { Names } from '../infra/naming.js';
import type { Plans } from '../producers/plans/plans.js';
import type { Runtime } from '../infra/runtime.js';
import { entitledUsers } from '../workers/fleet/entitled-users.js';
import { until } from './support.js';
import type { Child } from './processes.js';

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

/** The bench's node ids: n0000, n0001, … */
export const nodeId = (i: number) => `n${i.toString().padStart(4, '0')}`;

/** Where the raw baseline publishes to a node: one core-NATS subject per node, as the agents' push subjects. */
export const rawSubject = (names: Names, id: string) => `${names.prefix}.benchraw.${id}`;

/**
 * Grants every user a plan for every node (access is a function of the
 * subscription: without one a user is on no node, and there is nothing to
 * remove). `terms` add to a free, unlimited plan. Answers the plan id.
 */
export async function grantEveryone(plans: Plans, users: readonly string[], actor: { actor: string }, terms: Record<string, unknown> = {}, concurrency = 32): Promise<string> {
  const planId = 'bench';
  await plans.catalogue.create({ planId, name: 'bench', price: { amountMinor: 0, currency: 'EUR' }, ...terms }, actor);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, users.length) }, async () => {
      while (next < users.length) await plans.subscriptions.start(users[next++]!, { planId }, actor);
    }),
  );
  return planId;
}

/** Until `count` users are entitled to nodes in the read models (credentials and subscriptions projected). */
export async function untilEntitled(rt: Runtime, count: number, timeoutMs = 120_000): Promise<void> {
  await until(`${count} users entitled to nodes`, async () => (await entitledUsers(rt.db)).size >= count, timeoutMs, 100);
}

/** Stops the agents of every child (their cores, NATS connections and state), then the children. */
export async function stopChildren(children: readonly Child[]): Promise<void> {
  await Promise.all(children.map((c) => c.request('stop').catch(() => undefined)));
  await Promise.all(children.map((c) => c.close()));
}
