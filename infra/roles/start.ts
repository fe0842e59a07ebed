/**
 * `relaygrid start` / `npm start`: everything in one process. Uses the
 * configured services, else the local defaults when they answer, else starts
 * its own under .relaygrid/; then migrates and runs every role (API,
 * projectors, fleet worker, audit worker), with development keys under .relaygrid/ for what
 * is not configured.
 */
import { resolve } from 'node:path';
import type { Config, ConfigSources } from '../config.js';
import { createLogger } from '../logger.js';
import { openRuntime } from '../runtime.js';
import { ensureLocalStack } from '../stack/local-stack.js';
import { localAuditSigningKey, localMasterKey } from '../stack/master-key.js';
import { loadAuditWorkerConfig } from '../../workers/audit/config.js';
import { runMigrate, serve } from './serve.js';

export async function startAll(config: Config, sources: ConfigSources): Promise<void> {
  const log = createLogger(config.logLevel, { role: 'start' });
  const dataDir = resolve('.relaygrid');
  const masterKey = config.masterKey ?? localMasterKey(dataDir);
  if (!config.masterKey) log.warn({ file: `${dataDir}/master.key` }, 'RG_MASTER_KEY is unset: using the local development key');
  const stack = await ensureLocalStack({ config, sources, dataDir, log });
  try {
    const rt = await openRuntime({ ...config, masterKey, natsUrl: stack.natsUrl, databaseUrl: stack.databaseUrl, redisUrl: stack.redisUrl }, 'start', log);
    try {
      await runMigrate(rt);
      const auditEnv = { ...process.env, RG_AUDIT_SIGNING_KEY: process.env['RG_AUDIT_SIGNING_KEY'] || localAuditSigningKey(dataDir) };
      await serve(rt, { api: true, gateway: true, fleet: true, projectors: [], audit: loadAuditWorkerConfig(auditEnv) });
    } finally {
      await rt.close();
    }
  } finally {
    await stack.stop();
  }
}
