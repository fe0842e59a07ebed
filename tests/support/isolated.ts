/**
 * Isolation on shared servers: every test run gets its own namespace (so its
 * own subjects, streams and KV buckets) and its own Postgres database, and
 * removes both afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig, type Config } from '../../infra/config.js';
import { createLogger } from '../../infra/logger.js';
import { migrate } from '../../infra/migrate.js';
import { openRuntime, type Runtime } from '../../infra/runtime.js';

const ADMIN_DATABASE_URL = process.env['TEST_ADMIN_DATABASE_URL'] ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface Isolated {
  config: Config;
  rt: Runtime;
  /** Deletes the run's streams, buckets and database. */
  cleanup(): Promise<void>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_DATABASE_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export function uniqueNamespace(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

/** A namespace and database for one test file; `migrate` has run unless told otherwise. */
export async function isolated(opts: { migrate?: boolean; env?: Record<string, string> } = {}): Promise<Isolated> {
  const namespace = uniqueNamespace();
  const database = `rg_${namespace}`;
  await admin((c) => c.query(`create database ${database}`));
  const config = loadConfig({
    RG_NAMESPACE: namespace,
    DATABASE_URL: withDatabase(ADMIN_DATABASE_URL, database),
    NATS_URL: process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222',
    REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
    RG_API_PORT: '0',
    LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'silent',
    ...opts.env,
  });
  const rt = await openRuntime(config, 'test', createLogger(config.logLevel));
  if (opts.migrate ?? true) await migrate({ ...rt, replicas: 1 });
  return {
    config,
    rt,
    cleanup: async () => {
      const prefix = `${rt.names.upper}_`;
      for await (const name of rt.nats.jsm.streams.names()) {
        if (name.startsWith(prefix) || name.startsWith(`KV_${prefix}`)) await rt.nats.jsm.streams.delete(name);
      }
      await rt.close();
      await admin((c) => c.query(`drop database if exists ${database} with (force)`));
    },
  };
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
