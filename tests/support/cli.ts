/** The built `relaygrid` command, run as a child process joined to a test's sandbox. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Config } from '../../infra/config.js';

export const CLI = fileURLToPath(new URL('../../dist/infra/cli/main.js', import.meta.url));
const run = promisify(execFile);

/** The environment that points a child process at the sandbox's namespace, servers and master key. */
export function sandboxEnv(config: Config, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    NATS_URL: config.natsUrl,
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    RG_NAMESPACE: config.namespace,
    RG_MASTER_KEY: config.masterKey?.toString('base64'),
    LOG_LEVEL: 'silent',
    ...extra,
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `relaygrid <args…>` to its end; a non-zero exit is a result, not an error. */
export async function runCli(config: Config, args: readonly string[], extraEnv: Record<string, string | undefined> = {}): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: sandboxEnv(config, extraEnv) });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as CliResult;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}
