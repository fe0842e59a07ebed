#!/usr/bin/env node
/**
 * The `relaygrid` command. One subcommand per role; `start` runs them all in
 * one process. Configuration errors end with one line naming the variable.
 */
import { configSources, ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { runMigrate, serve } from '../roles/serve.js';
import { startAll } from '../roles/start.js';
import { runSkip } from '../roles/skip.js';
import { runUsers } from '../roles/users.js';
import { runReplay } from '../../replay/cli.js';
import { runNatsConfig } from '../roles/nats-config.js';
import { runAgent } from '../roles/agent.js';
import { runFleetCli } from '../roles/fleet-cli.js';
import { loadAuditWorkerConfig } from '../../workers/audit/config.js';
import { withRuntime as withRole, type Runtime } from '../runtime.js';
import { CliError } from './cli-error.js';

const USAGE = `usage: relaygrid <command>

commands:
  start                 migrate, then run every role in one process (starts local
                        NATS, Redis and Postgres when none are configured or running)
  migrate               create or update streams, KV buckets, the fleet's object stores
                        and Postgres tables
  api                   run the HTTP API on RG_API_PORT
  gateway               run the messenger's WebSocket gateway on RG_GATEWAY_PORT
  projector [name...]   run projectors (all when no name is given)
  fleet-worker          serve node agents, judge node health, push user changes to
                        nodes, and the relaygrid-ops NATS micro service
  fleet <command>       nodes.yaml import, nodes, rollouts (\`relaygrid fleet\` for details)
  agent --node ID --state-dir DIR [--enroll TOKEN --api URL] [--core v2ray|xray]
        [--core-binary PATH] [--api-port N] [--sync-interval S] [--usage-interval S]
                        run a node agent (see docs/operations.md, "Adding a node")
  audit-worker          keep the Merkle tree over the audit stream and sign checkpoints
                        (RG_AUDIT_SIGNING_KEY, RG_AUDIT_CHECKPOINT_DIR; see docs/auditors.md)
  skip-event <projector> --seq N --reason "…" [--actor who]
                        record a failed event as skipped and move the projector past it
  nats-config [--host H] [--port N] [--store-dir DIR]
                        print a nats-server config with Relaygrid's account and users
                        (passwords from NATS_OPERATOR_/SERVICE_/ANALYST_/AUDIT_/GATEWAY_PASSWORD,
                        enrolled nodes' users from DATABASE_URL)
  replay <command>      schemas, export, rebuild, state, into, audit
                        (\`relaygrid replay\` for details)
  users <command>       create the first admin, suspend, reinstate, grant or revoke
                        roles, list (\`relaygrid users\` for details)

configuration (environment): NATS_URL, DATABASE_URL, REDIS_URL, RG_NAMESPACE,
  RG_MASTER_KEY, RG_API_PORT, RG_GATEWAY_PORT, RG_STREAM_REPLICAS, LOG_LEVEL and the
  RG_* auth and messenger limits — see README.md`;

class UsageError extends CliError {}

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return;
  }
  const config = loadConfig();
  const withRuntime = (role: string, fn: (rt: Runtime) => Promise<void>) => withRole(config, role, fn);
  switch (command) {
    case 'migrate':
      return withRuntime('migrate', runMigrate);
    case 'api':
      return withRuntime('api', (rt) => serve(rt, { api: true }));
    case 'gateway':
      return withRuntime('gateway', (rt) => serve(rt, { api: false, gateway: true }));
    case 'audit-worker':
      return withRuntime('audit', (rt) => serve(rt, { api: false, audit: loadAuditWorkerConfig() }));
    case 'fleet-worker':
      return withRuntime('fleet', (rt) => serve(rt, { api: false, fleet: true }));
    case 'fleet':
      return withRuntime('fleet-cli', (rt) => runFleetCli(rt, args));
    case 'agent':
      return runAgent(config, args);
    case 'projector':
      return withRuntime('projector', (rt) => serve(rt, { api: false, projectors: args }));
    case 'skip-event':
      return withRuntime('skip', (rt) => runSkip(rt, args));
    case 'replay':
      return runReplay(config, args);
    case 'nats-config':
      return runNatsConfig(config, args);
    case 'users':
      return withRuntime('users', (rt) => runUsers(rt, args));
    case 'start':
      return startAll(config, configSources());
    default:
      throw new UsageError(`unknown command "${command}"\n\n${USAGE}`);
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    const code = (err as { code?: unknown }).code;
    const badArguments = typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS');
    if (badArguments || err instanceof ConfigError || err instanceof CliError) {
      console.error(`relaygrid: ${(err as Error).message}`);
      process.exit(err instanceof CliError ? err.exitCode : 2);
    }
    createLogger('error').fatal({ err }, 'relaygrid failed');
    console.error(`relaygrid: ${(err as Error).message}`);
    process.exit(1);
  },
);
