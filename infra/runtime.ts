/**
 * The shared resources of one process: configuration, logger, metrics, the
 * NATS connection, the Postgres pool. Roles (api, projectors, …) borrow them;
 * `close()` releases them in reverse order.
 */
import type { Kysely } from 'kysely';
import type pg from 'pg';
import { Redis } from 'ioredis';
import { sharedRegistry } from '../contracts/catalogue.js';
import type { SchemaRegistry } from '../contracts/codec.js';
import { createDb, createPool } from '../schema/db.js';
import type { Database } from '../schema/database.js';
import type { Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import { Metrics } from './metrics.js';
import { Names } from './naming.js';
import { connectNats, reportConnection, type Nats } from './nats/connection.js';
import { startTelemetry } from './telemetry.js';

export interface Runtime {
  config: Config;
  log: Logger;
  names: Names;
  registry: SchemaRegistry;
  metrics: Metrics;
  nats: Nats;
  pool: pg.Pool;
  db: Kysely<Database>;
  redis: Redis;
  close(): Promise<void>;
}

export async function openRuntime(config: Config, role: string, log = createLogger(config.logLevel, { role })): Promise<Runtime> {
  const telemetry = startTelemetry(role, log);
  const nats = await connectNats(config.natsUrl, `relaygrid-${role}`);
  const pool = createPool(config.databaseUrl);
  pool.on('error', (err) => log.warn({ err }, 'idle postgres connection failed'));
  const db = createDb(pool);
  const metrics = new Metrics();
  reportConnection(nats.nc, metrics.natsConnected);
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  redis.on('error', (err) => log.warn({ err }, 'redis connection failed'));
  return {
    config,
    log,
    names: new Names(config.namespace),
    registry: sharedRegistry(),
    metrics,
    nats,
    pool,
    db,
    redis,
    close: async () => {
      redis.disconnect();
      await db.destroy();
      await nats.close();
      await telemetry?.shutdown();
    },
  };
}

/** Runs `fn` with a runtime of its own, closed however `fn` ends (one CLI command or role). */
export async function withRuntime<T>(config: Config, role: string, fn: (rt: Runtime) => Promise<T>): Promise<T> {
  const rt = await openRuntime(config, role);
  try {
    return await fn(rt);
  } finally {
    await rt.close();
  }
}
