/**
 * Child processes for the local stack: finding binaries, spawning services
 * whose output goes to our logger, and making sure none of them outlives us.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../logger.js';

/**
 * Searched after PATH: Debian installs nats-server in /usr/sbin, which is not
 * on the PATH of a non-login or non-root shell.
 */
const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** Absolute path of an executable named `name`, or undefined. */
export async function findExecutable(name: string, searchPath: string = process.env.PATH ?? ''): Promise<string | undefined> {
  const dirs = [...searchPath.split(path.delimiter).filter((dir) => dir !== ''), ...SBIN_DIRS];
  for (const dir of new Set(dirs)) {
    const candidate = path.join(dir, name);
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here: keep looking
    }
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Reaper: the last line of defence when the parent goes away without stop().

interface Tracked {
  pid: number;
  signal: NodeJS.Signals;
}

const tracked = new Set<Tracked>();
const FATAL_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function killTrackedNow(): void {
  // Synchronous on purpose: this runs inside 'exit', where nothing async runs.
  for (const entry of tracked) {
    try {
      process.kill(entry.pid, entry.signal);
    } catch {
      // already gone
    }
  }
  tracked.clear();
  uninstallHandlers();
}

function onFatalSignal(signal: NodeJS.Signals): void {
  // If anything else listens for this signal, the application owns shutdown
  // and will call stop(), with 'exit' as the backstop. Otherwise our listener
  // is all that suppressed Node's default "die on signal": clean up, then die
  // by the signal anyway so the exit status still says what ended us.
  if (process.listenerCount(signal) > 1) return;
  killTrackedNow();
  process.kill(process.pid, signal);
}

let installed = false;

function installHandlers(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killTrackedNow);
  // Prepended so we run before any `once` listener removes itself: the count
  // above must include them, or a first Ctrl-C would kill the services while
  // the application is still draining.
  for (const signal of FATAL_SIGNALS) process.prependListener(signal, onFatalSignal);
}

function uninstallHandlers(): void {
  if (!installed) return;
  installed = false;
  process.off('exit', killTrackedNow);
  for (const signal of FATAL_SIGNALS) process.off(signal, onFatalSignal);
}

/**
 * Kills `pid` with `signal` if this process exits (or dies of SIGINT, SIGTERM
 * or SIGHUP) before the returned release function is called. A SIGKILL of the
 * parent cannot be caught: spawnService covers it with the kernel's parent-death
 * signal, and the embedded Postgres is stopped by the next start instead.
 */
export function killOnExit(pid: number, signal: NodeJS.Signals): () => void {
  const entry: Tracked = { pid, signal };
  tracked.add(entry);
  installHandlers();
  return () => {
    tracked.delete(entry);
    if (tracked.size === 0) uninstallHandlers();
  };
}

// ---------------------------------------------------------------------------

export interface ServiceProcess {
  readonly name: string;
  readonly pid: number;
  /** Settles with a description ("exited with code 1") when the process ends, for whatever reason. */
  readonly exited: Promise<string>;
  /** The last lines the process printed, for error messages. */
  output(): string;
  /** Sends the stop signal, escalates to SIGKILL after the grace period, resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

export interface SpawnServiceOptions {
  name: string;
  command: string;
  args: string[];
  log: Logger;
  stopSignal?: NodeJS.Signals;
  graceMs?: number;
}

const OUTPUT_LINES = 20;

/**
 * Keeps a service's last output lines for error messages and passes each line
 * to the debug log. Shared by spawned services and the embedded Postgres.
 */
export function outputTail(service: string, log: Logger, keep = OUTPUT_LINES): { add(text: string): void; text(): string } {
  const lines: string[] = [];
  return {
    add(text: string) {
      for (const line of text.split('\n')) {
        if (line.trim() === '') continue;
        log.debug({ service, line }, 'service output');
        lines.push(line);
        if (lines.length > keep) lines.shift();
      }
    },
    text: () => lines.join('\n'),
  };
}

/**
 * `[command, args]` that make the kernel send `signal` to the service when we
 * die, however we die: util-linux's `setpriv --pdeathsig` sets it and execs
 * the service (same pid). A SIGKILL of `start` is the one end that no exit
 * hook sees; without setpriv (not Linux) that case leaves the service running.
 */
async function diesWithUs(command: string, args: string[], signal: NodeJS.Signals): Promise<[string, string[]]> {
  const setpriv = process.platform === 'linux' ? await findExecutable('setpriv') : undefined;
  return setpriv ? [setpriv, ['--pdeathsig', signal.replace(/^SIG/, ''), '--', command, ...args]] : [command, args];
}

export async function spawnService(opts: SpawnServiceOptions): Promise<ServiceProcess> {
  const { name, log } = opts;
  const stopSignal = opts.stopSignal ?? 'SIGTERM';
  const [command, args] = await diesWithUs(opts.command, opts.args, stopSignal);
  // Within `start`'s own stop deadline (infra/roles/start.ts): a service that
  // ignores SIGTERM for 5 s is killed before the supervisor kills us.
  const graceMs = opts.graceMs ?? 5_000;

  // Own process group: a Ctrl-C in the terminal then reaches only us, so the
  // application can drain its connections before we stop the services it uses,
  // in reverse order, instead of everything dying at once.
  const child = spawn(command, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });

  const tail = outputTail(name, log);
  for (const stream of [child.stdout, child.stderr]) createInterface({ input: stream }).on('line', (line) => tail.add(line));

  // Listen for the end before anything can await, so an early exit is never missed.
  let release = (): void => undefined;
  const exited = new Promise<string>((resolve) => {
    child.once('exit', (code, signal) => {
      release();
      resolve(signal !== null ? `was killed by ${signal}` : `exited with code ${String(code)}`);
    });
  });

  // 'error' (ENOENT, EACCES) replaces 'spawn' when the exec itself fails.
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`${name}: could not run ${opts.command}: ${err.message}`)));
  });
  // Later errors (a failed kill) must not become an uncaught 'error' event.
  child.on('error', (err) => log.warn({ service: name, err }, 'service process error'));
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: ${command} started without a pid`);
  release = killOnExit(pid, stopSignal);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(stopSignal);
      const escalate = setTimeout(() => {
        log.warn({ service: name, pid, graceMs }, 'service ignored its stop signal; sending SIGKILL');
        child.kill('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(escalate);
    })();
    return stopping;
  };

  return { name, pid, exited, output: () => tail.text(), stop };
}
