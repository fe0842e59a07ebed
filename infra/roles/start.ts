/**
 * `relaygrid start` / `npm start`: everything in one process. Uses the
 * configured services, else the local defaults when they answer, else starts
 * its own under .relaygrid/; then migrates and runs every role (API,
 * projectors, fleet worker, audit worker), with development keys under .relaygrid/ for what
 * is not configured. What it chose is recorded in .relaygrid/stack.json for
 * the other commands run from the same folder, until it stops.
 */
import type { Config, ConfigSources } from '../config.js';
import { createLogger } from '../logger.js';
import { openRuntime } from '../runtime.js';
import { ensureLocalStack, type LocalPorts } from '../stack/local-stack.js';
import { localAuditSigningKey, localMasterKey } from '../stack/master-key.js';
import { isRunning } from '../stack/processes.js';
import { localDataDir, readStack, recordableUrl, recordStack } from '../stack/stack-file.js';
import { loadAuditWorkerConfig } from '../../workers/audit/config.js';
import { CliError } from '../cli/cli-error.js';
import { runMigrate, serve } from './serve.js';
import { shutdownOnSignal } from './shutdown.js';

/** Under the ~10 s a supervisor gives between SIGTERM and SIGKILL. */
const STOP_DEADLINE_MS = 8_000;

class AlreadyRunningError extends CliError {}

export async function startAll(config: Config, sources: ConfigSources, ports: Partial<LocalPorts> = {}): Promise<void> {
  const log = createLogger(config.logLevel, { role: 'start' });
  const dataDir = localDataDir();
  const running = readStack(dataDir);
  if (running && running.pid !== process.pid && isRunning(running.pid)) {
    // A second stack on the same data directory would fight over it (Postgres's lock, NATS's store).
    throw new AlreadyRunningError(`a stack started from this folder is already running (pid ${running.pid}, ${dataDir}/stack.json): stop it first`);
  }
  const shutdown = shutdownOnSignal(log, STOP_DEADLINE_MS);
  try {
    const masterKey = config.masterKey ?? localMasterKey(dataDir);
    if (!config.masterKey) log.warn({ file: `${dataDir}/master.key` }, 'RG_MASTER_KEY is unset: using the local development key');
    const stack = await ensureLocalStack({ config, sources, dataDir, log, ports });
    const unrecord = recordStack(dataDir, {
      pid: process.pid,
      startedAt: new Date().toISOString(),
      urls: {
        NATS_URL: recordableUrl(stack.natsUrl, sources.natsUrl),
        DATABASE_URL: recordableUrl(stack.databaseUrl, sources.databaseUrl),
        REDIS_URL: recordableUrl(stack.redisUrl, sources.redisUrl),
      },
      namespace: config.namespace,
      ...(config.masterKey ? {} : { masterKeyFile: 'master.key' }),
    });
    try {
      if (shutdown.requested()) return;
      const rt = await openRuntime({ ...config, masterKey, natsUrl: stack.natsUrl, databaseUrl: stack.databaseUrl, redisUrl: stack.redisUrl }, 'start', log);
      try {
        await runMigrate(rt);
        if (shutdown.requested()) return;
        const auditEnv = { ...process.env, RG_AUDIT_SIGNING_KEY: process.env['RG_AUDIT_SIGNING_KEY'] || localAuditSigningKey(dataDir) };
        await serve(rt, { api: true, gateway: true, fleet: true, projectors: [], audit: loadAuditWorkerConfig(auditEnv) }, shutdown.signalled);
      } finally {
        await rt.close();
      }
    } finally {
      // The record goes first: from now on commands must not pick a stack that is going away.
      unrecord();
      await stack.stop();
    }
  } finally {
    shutdown.release();
  }
}
