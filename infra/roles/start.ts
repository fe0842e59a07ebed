/**
 * `relaygrid start` / `npm start`: everything in one process. Uses the
 * configured services, else the local defaults when they answer, else starts
 * its own under .relaygrid/; then migrates and runs every role.
 */
import { resolve } from 'node:path';
import type { Config, ConfigSources } from '../config.js';
import { createLogger } from '../logger.js';
import { openRuntime } from '../runtime.js';
import { ensureLocalStack } from '../stack/local-stack.js';
import { runMigrate, serve } from './serve.js';

export async function startAll(config: Config, sources: ConfigSources): Promise<void> {
  const log = createLogger(config.logLevel, { role: 'start' });
  const stack = await ensureLocalStack({ config, sources, dataDir: resolve('.relaygrid'), log });
  try {
    const rt = await openRuntime({ ...config, natsUrl: stack.natsUrl, databaseUrl: stack.databaseUrl, redisUrl: stack.redisUrl }, 'start', log);
    try {
      await runMigrate(rt);
      await serve(rt, { api: true, projectors: [] });
    } finally {
      await rt.close();
    }
  } finally {
    await stack.stop();
  }
}
