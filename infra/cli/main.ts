#!/usr/bin/env node
/**
 * The `relaygrid` command. One subcommand per role; `start` runs them all in
 * one process. Configuration errors end with one line naming the variable.
 */
import { configSources, ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { UnknownProjectorError } from '../roles/projectors.js';
import { runMigrate, serve } from '../roles/serve.js';
import { startAll } from '../roles/start.js';
import { openRuntime } from '../runtime.js';

const USAGE = `usage: relaygrid <command>

commands:
  start                 migrate, then run every role in one process (starts local
                        NATS, Redis and Postgres when none are configured or running)
  migrate               create or update streams, KV buckets and Postgres tables
  api                   run the HTTP API on RG_API_PORT
  projector [name...]   run projectors (all when no name is given)

configuration (environment): NATS_URL, DATABASE_URL, REDIS_URL, RG_NAMESPACE,
  RG_API_PORT, RG_GATEWAY_PORT, RG_STREAM_REPLICAS, LOG_LEVEL — see README.md`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return;
  }
  const config = loadConfig();
  switch (command) {
    case 'migrate': {
      const rt = await openRuntime(config, 'migrate');
      try {
        await runMigrate(rt);
      } finally {
        await rt.close();
      }
      return;
    }
    case 'api':
    case 'projector': {
      const rt = await openRuntime(config, command);
      try {
        await serve(rt, command === 'api' ? { api: true } : { api: false, projectors: args });
      } finally {
        await rt.close();
      }
      return;
    }
    case 'start': {
      await startAll(config, configSources());
      return;
    }
    default:
      throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    if (err instanceof ConfigError || err instanceof UsageError || err instanceof UnknownProjectorError) {
      console.error(`relaygrid: ${err.message}`);
      process.exit(2);
    }
    createLogger('error').fatal({ err }, 'relaygrid failed');
    console.error(`relaygrid: ${(err as Error).message}`);
    process.exit(1);
  },
);
