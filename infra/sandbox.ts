/**
 * A sandbox on shared servers: its own namespace (so its own subjects, streams
 * and KV buckets) and its own Postgres database, migrated, and removed again
 * by `cleanup()`. Tests and benchmarks use it to run side by side on one
 * NATS and one Postgres without seeing each other's data.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { loadConfig, type Config } from './config.js';
import { createLogger } from './logger.js';
import { migrate } from './migrate.js';
import { openRuntime, type Runtime } from './runtime.js';

export interface Sandbox {
  namespace: string;
  database: string;
  config: Config;
  rt: Runtime;
  /** Deletes the namespace's streams and buckets, closes the runtime, drops the database. Idempotent. */
  cleanup(): Promise<void>;
}

export interface SandboxOptions {
  /** First letter of the namespace: `t` for tests, `b` for benchmarks. */
  prefix: string;
  role: string;
  /** Postgres URL with the right to create databases. */
  adminDatabaseUrl: string;
  migrate?: boolean;
  env?: Record<string, string>;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

async function admin<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function deleteStreams(rt: Runtime): Promise<void> {
  const prefix = `${rt.names.upper}_`;
  const names: string[] = [];
  for await (const name of rt.nats.jsm.streams.names()) {
    if (name.startsWith(prefix) || name.startsWith(`KV_${prefix}`) || name.startsWith(`OBJ_${prefix}`)) names.push(name);
  }
  // The audit stream first: it sources the context streams.
  names.sort((a, b) => Number(b.endsWith('_AUDIT')) - Number(a.endsWith('_AUDIT')));
  for (const name of names) await rt.nats.jsm.streams.delete(name);
}

/** A fresh, empty Postgres database next to the admin one, and how to drop it again. */
export async function createDatabase(adminDatabaseUrl: string, database: string): Promise<{ url: string; drop(): Promise<void> }> {
  await admin(adminDatabaseUrl, (c) => c.query(`create database ${database}`));
  return {
    url: withDatabase(adminDatabaseUrl, database),
    drop: () => admin(adminDatabaseUrl, (c) => c.query(`drop database if exists ${database} with (force)`)).then(() => undefined),
  };
}

export async function openSandbox(opts: SandboxOptions): Promise<Sandbox> {
  const namespace = `${opts.prefix}${randomBytes(5).toString('hex')}`;
  const database = `rg_${namespace}`;
  const db = await createDatabase(opts.adminDatabaseUrl, database);
  let rt: Runtime | undefined;
  let cleaned: Promise<void> | undefined;
  const cleanup = (): Promise<void> => {
    cleaned ??= (async () => {
      const errors: unknown[] = [];
      if (rt) {
        await deleteStreams(rt).catch((err: unknown) => errors.push(err));
        await rt.close().catch((err: unknown) => errors.push(err));
      }
      await db.drop().catch((err: unknown) => errors.push(err));
      if (errors.length > 0) throw new AggregateError(errors, `cleanup of sandbox ${namespace} was incomplete`);
    })();
    return cleaned;
  };
  try {
    const config = loadConfig({
      RG_NAMESPACE: namespace,
      DATABASE_URL: db.url,
      NATS_URL: process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222',
      REDIS_URL: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379',
      RG_API_PORT: '0',
      LOG_LEVEL: process.env['LOG_LEVEL'] ?? 'silent',
      RG_MASTER_KEY: randomBytes(32).toString('base64'),
      ...opts.env,
    });
    rt = await openRuntime(config, opts.role, createLogger(config.logLevel, { role: opts.role }));
    if (opts.migrate ?? true) await migrate({ ...rt, replicas: 1 });
    return { namespace, database, config, rt, cleanup };
  } catch (err) {
    await cleanup().catch(() => undefined);
    throw err;
  }
}
