/**
 * What `npm start` runs against on a fresh machine. For each of NATS, Postgres
 * and Redis, in order of preference:
 *   1. the URL from the environment, when the variable is set ('env');
 *   2. the local default, when something answers on its port ('local');
 *   3. a server we start ourselves with its data under dataDir ('started').
 * Only what this call started is stopped by stop().
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { DEFAULTS, type Config, type ConfigSources } from '../config.js';
import type { Logger } from '../logger.js';
import { LOOPBACK, preferredPort, tcpAnswers, waitForPort } from './ports.js';
import { startEmbeddedPostgres, stopOrphanedPostmaster } from './postgres.js';
import { findExecutable, spawnService, type ServiceProcess } from './processes.js';

export type Service = 'nats' | 'postgres' | 'redis';
export type LocalPorts = Record<Service, number>;

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** The ports of the default URLs: where a developer's own services usually listen. */
export const DEFAULT_PORTS: LocalPorts = {
  nats: portOf(DEFAULTS.natsUrl),
  postgres: portOf(DEFAULTS.databaseUrl),
  redis: portOf(DEFAULTS.redisUrl),
};

export interface LocalStack {
  natsUrl: string;
  databaseUrl: string;
  redisUrl: string;
  /** Stops what this call started, last started first. Idempotent; failures are logged, not thrown. */
  stop(): Promise<void>;
  /** The services this call started, in start order. */
  started: Service[];
}

export interface EnsureLocalStackOptions {
  config: Config;
  sources: ConfigSources;
  /** Data of started services goes to <dataDir>/nats, /pg and /redis. */
  dataDir: string;
  log: Logger;
  /**
   * Where to look for already-running local services, and the ports to
   * prefer when starting our own (any free port if taken). Defaults to
   * DEFAULT_PORTS; tests move them to unused ports to exercise the start path
   * on a machine that runs the real services.
   */
  ports?: Partial<LocalPorts>;
}

/** A local service answers at once or not at all; don't delay startup on it. */
const PROBE_TIMEOUT_MS = 500;
const READY_TIMEOUT_MS = 15_000;

interface Started {
  url: string;
  stop(): Promise<void>;
}

export async function ensureLocalStack(opts: EnsureLocalStackOptions): Promise<LocalStack> {
  const { config, sources, dataDir, log } = opts;
  const ports: LocalPorts = { ...DEFAULT_PORTS, ...opts.ports };
  const running: Array<{ service: Service } & Started> = [];

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      for (const { service, ...instance } of [...running].reverse()) {
        try {
          await instance.stop();
          log.info({ service }, 'stopped local service');
        } catch (err) {
          log.error({ service, err }, 'failed to stop local service');
        }
      }
    })();
    return stopping;
  };

  const resolve = async (
    service: Service,
    explicit: boolean,
    configured: string,
    defaultUrl: string,
    start: (port: number) => Promise<Started>,
  ): Promise<string> => {
    if (explicit) return decided(log, service, configured, 'env');
    const port = ports[service];
    const url = withPort(defaultUrl, port);
    if (await tcpAnswers(LOOPBACK, port, PROBE_TIMEOUT_MS)) return decided(log, service, url, 'local');
    const instance = await start(await preferredPort(port));
    running.push({ service, ...instance });
    return decided(log, service, instance.url, 'started');
  };

  try {
    await mkdir(dataDir, { recursive: true });
    if (!sources.databaseUrl) await stopOrphanedPostmaster(path.join(dataDir, 'pg'), log);
    const natsUrl = await resolve('nats', sources.natsUrl, config.natsUrl, DEFAULTS.natsUrl, (port) =>
      startBinary(NATS, port, path.join(dataDir, 'nats'), log),
    );
    const databaseUrl = await resolve('postgres', sources.databaseUrl, config.databaseUrl, DEFAULTS.databaseUrl, (port) =>
      startEmbeddedPostgres({ databaseDir: path.join(dataDir, 'pg'), port, log, timeoutMs: READY_TIMEOUT_MS }),
    );
    const redisUrl = await resolve('redis', sources.redisUrl, config.redisUrl, DEFAULTS.redisUrl, (port) =>
      startBinary(REDIS, port, path.join(dataDir, 'redis'), log),
    );
    return { natsUrl, databaseUrl, redisUrl, stop, started: running.map((r) => r.service) };
  } catch (err) {
    // Don't leave half a stack running behind a failed start.
    await stop();
    throw err;
  }
}

/** A service run from a binary on PATH: how to find it, how to run it, where it answers. */
interface BinaryService {
  name: Service;
  binary: string;
  install: { debian: string; homebrew: string; variable: string };
  args(port: number, dir: string): string[];
  defaultUrl: string;
}

const NATS: BinaryService = {
  name: 'nats',
  binary: 'nats-server',
  install: { debian: 'nats-server', homebrew: 'nats-server', variable: 'NATS_URL' },
  args: (port, dir) => ['-js', '-a', LOOPBACK, '-p', String(port), '-sd', dir],
  defaultUrl: DEFAULTS.natsUrl,
};

const REDIS: BinaryService = {
  name: 'redis',
  binary: 'redis-server',
  install: { debian: 'redis-server', homebrew: 'redis', variable: 'REDIS_URL' },
  // A cache for a dev stack: no snapshots, no AOF, nothing to recover.
  args: (port, dir) => ['--port', String(port), '--bind', LOOPBACK, '--save', '', '--appendonly', 'no', '--dir', dir],
  defaultUrl: DEFAULTS.redisUrl,
};

async function startBinary(service: BinaryService, port: number, dir: string, log: Logger): Promise<Started> {
  const command = await requireExecutable(service.binary, service.install);
  await mkdir(dir, { recursive: true });
  const child = await spawnService({ name: service.name, command, args: service.args(port, dir), log });
  await untilListening(child, port);
  return { url: withPort(service.defaultUrl, port), stop: () => child.stop() };
}

async function requireExecutable(binary: string, install: { debian: string; homebrew: string; variable: string }): Promise<string> {
  const found = await findExecutable(binary);
  if (found !== undefined) return found;
  throw new Error(
    `${binary} not found on PATH: install it with \`apt-get install ${install.debian}\` (Debian) ` +
      `or \`brew install ${install.homebrew}\` (Homebrew), or set ${install.variable}`,
  );
}

/** Resolves once the child listens on port; if it dies or times out first, stops it and throws with its output. */
async function untilListening(child: ServiceProcess, port: number): Promise<void> {
  const died = new AbortController();
  const exitedEarly = child.exited.then((how) => {
    died.abort();
    return `${how} before accepting connections on ${LOOPBACK}:${port}`;
  });
  const ready = waitForPort(LOOPBACK, port, READY_TIMEOUT_MS, died.signal).then(
    () => undefined,
    (err: unknown) => (err instanceof Error ? err.message : String(err)),
  );
  const problem = await Promise.race([ready, exitedEarly]);
  if (problem === undefined) return;
  await child.stop();
  throw new Error(`${child.name}: ${problem}\n${child.output()}`);
}

const DECISIONS = {
  env: 'using the configured URL',
  local: 'using the local default, which answers',
  started: 'started a local server',
} as const;

function decided(log: Logger, service: Service, url: string, source: keyof typeof DECISIONS): string {
  log.info({ service, url: redact(url), source }, `${service}: ${DECISIONS[source]}`);
  return url;
}

function withPort(url: string, port: number): string {
  const parsed = new URL(url);
  parsed.port = String(port);
  return parsed.toString();
}

/** Never log a password from DATABASE_URL and friends. */
function redact(urls: string): string {
  return urls
    .split(',')
    .map((part) => {
      try {
        const parsed = new URL(part.trim());
        if (parsed.password === '') return part;
        parsed.password = '***';
        return parsed.toString();
      } catch {
        return part;
      }
    })
    .join(',');
}
