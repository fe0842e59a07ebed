/**
 * Isolation on shared servers: every test run gets its own namespace (so its
 * own subjects, streams and KV buckets) and its own Postgres database, and
 * removes both afterwards.
 */
import { randomBytes } from 'node:crypto';
import { createDatabase, openSandbox, type Sandbox } from '../../infra/sandbox.js';

const ADMIN_DATABASE_URL = process.env['TEST_ADMIN_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export type Isolated = Sandbox;

/** A namespace and database for one test file; `migrate` has run unless told otherwise. */
export function isolated(opts: { migrate?: boolean; env?: Record<string, string> } = {}): Promise<Isolated> {
  return openSandbox({ prefix: 't', role: 'test', adminDatabaseUrl: ADMIN_DATABASE_URL, ...opts });
}

/** An empty database of its own beside the sandbox's (a scratch copy's target, say); drop() removes it. */
export function scratchDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  return createDatabase(ADMIN_DATABASE_URL, `rg_scratch_${randomBytes(4).toString('hex')}`);
}

/** Polls `fn` until it returns a truthy value or the timeout passes. */
export async function eventually<T>(fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 10_000, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
