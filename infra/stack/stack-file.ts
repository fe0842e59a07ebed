/**
 * `.relaygrid/stack.json`: what `start` chose (the NATS, Postgres and Redis it
 * uses, its namespace, whether it runs on the development master key), so that
 * every other command run from the same folder finds that stack without the
 * operator copying URLs out of a log. Written by `start` (mode 0600), removed
 * when it stops; a file whose process is gone is reported as stale, never used.
 *
 * It holds no secret that .relaygrid/ does not already hold: a URL from the
 * environment that carries a password is left out (the command then asks for
 * the variable), the embedded Postgres's fixed loopback password is in the
 * source anyway, and the master key is named by its file, not copied.
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ConfigError } from '../config.js';
import { isRunning } from './processes.js';

/** Where `start` keeps its data and records, relative to the folder it runs in. */
export function localDataDir(cwd: string = process.cwd()): string {
  return resolve(cwd, '.relaygrid');
}

const FILE = 'stack.json';

/** The variables a recorded stack can stand in for, in the order they are reported. */
const VARIABLES = ['NATS_URL', 'DATABASE_URL', 'REDIS_URL', 'RG_NAMESPACE', 'RG_MASTER_KEY'] as const;
type Variable = (typeof VARIABLES)[number];

export interface StackRecord {
  /** The `start` process: the record is live only while it runs. */
  pid: number;
  startedAt: string;
  /** A value per variable; `null` when `start` took it from its environment and it holds a password. */
  urls: Record<'NATS_URL' | 'DATABASE_URL' | 'REDIS_URL', string | null>;
  namespace: string;
  /** The development key file `start` used for RG_MASTER_KEY, relative to the data dir; absent when RG_MASTER_KEY was set. */
  masterKeyFile?: string;
}

/** A URL is recorded unless it came from the environment with a password in it. */
export function recordableUrl(urls: string, fromEnv: boolean): string | null {
  if (!fromEnv) return urls;
  const hasPassword = urls.split(',').some((part) => {
    try {
      return new URL(part.trim()).password !== '';
    } catch {
      return false;
    }
  });
  return hasPassword ? null : urls;
}

/**
 * Writes the record (0600, via a rename so a reader never sees half a file)
 * and returns its remover, which also runs if the process exits without it.
 */
export function recordStack(dataDir: string, record: StackRecord): () => void {
  const file = join(dataDir, FILE);
  const partial = `${file}.${process.pid}.tmp`;
  writeFileSync(partial, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(partial, file);
  const remove = () => {
    process.off('exit', remove);
    // Only our own record: a later start may have replaced it.
    if (readStack(dataDir)?.pid === record.pid) rmSync(file, { force: true });
  };
  process.on('exit', remove);
  return remove;
}

export function readStack(dataDir: string): StackRecord | undefined {
  const file = join(dataDir, FILE);
  if (!existsSync(file)) return undefined;
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as StackRecord;
    return Number.isInteger(parsed.pid) && typeof parsed.urls === 'object' ? parsed : undefined;
  } catch {
    return undefined; // half-written by hand or by a crash: treated as absent
  }
}

export interface StackEnv {
  env: Record<string, string | undefined>;
  /** One line for stderr saying what was taken from the record, or why it was not; undefined when there is no record. */
  notice?: string;
}

type Env = Record<string, string | undefined>;

const isSet = (env: Env, name: string) => env[name] !== undefined && env[name] !== '';

/**
 * `env` with the unset variables filled from the live stack recorded in
 * dataDir. Variables that are set always win. Throws a ConfigError naming the
 * variable when the stack needs one that was not recorded (it holds a password).
 */
export function envFromStack(env: Env, dataDir: string = localDataDir()): StackEnv {
  const record = readStack(dataDir);
  if (!record) return { env };
  const where = relative(process.cwd(), join(dataDir, FILE)) || join(dataDir, FILE);
  if (!isRunning(record.pid)) {
    return {
      env,
      notice: `ignoring ${where}: the stack it records (pid ${record.pid}) is no longer running; using the environment and defaults (start it again with \`npm start\`)`,
    };
  }
  const values: Partial<Record<Variable, string>> = {};
  for (const name of ['NATS_URL', 'DATABASE_URL', 'REDIS_URL'] as const) {
    if (isSet(env, name)) continue;
    const url = record.urls[name];
    if (url === null) {
      throw new ConfigError(name, `\`npm start\` here (pid ${record.pid}) took it from its environment, and it holds a password, which is not recorded in ${where}: set it for this command too`);
    }
    values[name] = url;
  }
  if (!isSet(env, 'RG_NAMESPACE')) values.RG_NAMESPACE = record.namespace;
  if (!isSet(env, 'RG_MASTER_KEY') && record.masterKeyFile !== undefined) {
    const keyFile = join(dataDir, record.masterKeyFile);
    values.RG_MASTER_KEY = readFileSync(keyFile, 'utf8').trim();
  }
  const used = VARIABLES.filter((name) => values[name] !== undefined);
  if (used.length === 0) return { env };
  const key = values.RG_MASTER_KEY !== undefined ? ` (the key in ${relative(process.cwd(), join(dataDir, record.masterKeyFile ?? '')) || record.masterKeyFile})` : '';
  return {
    env: { ...env, ...values },
    notice: `${used.join(', ')}${key} from ${where}: the stack \`npm start\` runs here (pid ${record.pid})`,
  };
}
