#!/usr/bin/env node
/**
 * The `relaygrid` command. One subcommand per role; `start` runs them all in
 * one process. Every command answers `--help` without touching anything, and
 * checks its arguments before it connects. Configuration errors end with one
 * line naming the variable. Run from the folder where `npm start` runs, the
 * commands find that stack in .relaygrid/stack.json (infra/stack/stack-file.ts).
 */
import { configSources, ConfigError, loadConfig, localStackPorts, type Config } from '../config.js';
import { envFromStack } from '../stack/stack-file.js';
import type { Runtime } from '../runtime.js';
import type { serve as Serve } from '../roles/serve.js';
import { CliError } from './cli-error.js';

// Each command imports its roles when it runs: `--help`, and a mistake in the
// arguments, answer at once instead of after loading every role there is.
const roles = {
  serve: () => import('../roles/serve.js'),
  start: () => import('../roles/start.js'),
  skip: () => import('../roles/skip.js'),
  users: () => import('../roles/users.js'),
  replay: () => import('../../replay/cli.js'),
  natsConfig: () => import('../roles/nats-config.js'),
  agent: () => import('../roles/agent.js'),
  fleet: () => import('../roles/fleet-cli.js'),
  plans: () => import('../roles/plans-cli.js'),
  billing: () => import('../roles/billing-cli.js'),
  projectors: () => import('../roles/projectors.js'),
  auditConfig: () => import('../../workers/audit/config.js'),
  runtime: () => import('../runtime.js'),
  logger: () => import('../logger.js'),
};

class UsageError extends CliError {}

/** The configuration, loaded on first use: `--help` and bad arguments never need it. */
type LazyConfig = () => Config;

interface Command {
  /** What follows `relaygrid` in the usage line. */
  synopsis: string;
  summary: string;
  /** `relaygrid <command> … --help`; defaults to the synopsis and summary. */
  help?: (args: string[]) => Promise<string>;
  run(args: string[], config: LazyConfig): Promise<void>;
}

const role = async (config: LazyConfig, name: string, fn: (rt: Runtime) => Promise<void>) => (await roles.runtime()).withRuntime(config(), name, fn);

/** For the roles that take no arguments: a stray one is a mistake, not something to ignore. */
function noArguments(command: string, args: string[]): void {
  if (args.length > 0) throw new UsageError(`${command}: unexpected argument "${args[0]}" (\`relaygrid ${command} --help\`)`);
}

const server = (name: string, roleName: string, which: () => Parameters<typeof Serve>[1] | Promise<Parameters<typeof Serve>[1]>) =>
  async (args: string[], config: LazyConfig) => {
    noArguments(name, args);
    const { serve } = await roles.serve();
    const chosen = await which();
    return role(config, roleName, (rt) => serve(rt, chosen));
  };

const COMMANDS: Record<string, Command> = {
  start: {
    synopsis: 'start',
    summary: 'migrate, then run every role in one process (starts local\nNATS, Redis and Postgres when none are configured or running,\nand records them in .relaygrid/stack.json for the other commands)',
    run: async (args) => {
      noArguments('start', args);
      // Not from stack.json: `start` is what writes it.
      return (await roles.start()).startAll(loadConfig(), configSources(), localStackPorts());
    },
  },
  migrate: {
    synopsis: 'migrate',
    summary: "create or update streams, KV buckets, the fleet's object stores\nand Postgres tables",
    run: async (args, config) => {
      noArguments('migrate', args);
      return role(config, 'migrate', (await roles.serve()).runMigrate);
    },
  },
  api: { synopsis: 'api', summary: 'run the HTTP API on RG_API_PORT', run: server('api', 'api', () => ({ api: true })) },
  gateway: { synopsis: 'gateway', summary: "run the messenger's WebSocket gateway on RG_GATEWAY_PORT", run: server('gateway', 'gateway', () => ({ api: false, gateway: true })) },
  projector: {
    synopsis: 'projector [name...]',
    summary: 'run projectors (all when no name is given)',
    run: async (args, config) => {
      (await roles.projectors()).checkProjectorNames(args);
      const { serve } = await roles.serve();
      return role(config, 'projector', (rt) => serve(rt, { api: false, projectors: args }));
    },
  },
  'fleet-worker': {
    synopsis: 'fleet-worker',
    summary: 'serve node agents, judge node health, push user changes to\nnodes, and the relaygrid-ops NATS micro service',
    run: server('fleet-worker', 'fleet', () => ({ api: false, fleet: true })),
  },
  fleet: {
    synopsis: 'fleet <command>',
    summary: 'nodes.yaml import, nodes, rollouts (`relaygrid fleet --help`)',
    help: async () => (await roles.fleet()).FLEET_USAGE,
    run: async (args, config) => {
      const { FLEET_USAGE, parseFleetArgs, runFleetCommand } = await roles.fleet();
      const cmd = await parseFleetArgs(args);
      if (cmd.command === 'usage') console.log(FLEET_USAGE);
      else await role(config, 'fleet-cli', (rt) => runFleetCommand(rt, cmd));
    },
  },
  agent: {
    synopsis: 'agent --node ID --state-dir DIR [--enroll TOKEN --api URL] [--core v2ray|xray]\n      [--core-binary PATH] [--api-port N] [--sync-interval S] [--usage-interval S]\n      [--edge nginx|caddy --edge-http-port N --edge-https-port N --edge-address IP --edge-root DIR]',
    summary: 'run a node agent (see docs/operations.md, "Adding a node")',
    help: async () => (await roles.agent()).AGENT_USAGE,
    run: async (args, config) => (await roles.agent()).runAgent(config(), args),
  },
  'audit-worker': {
    synopsis: 'audit-worker',
    summary: 'keep the Merkle tree over the audit stream and sign checkpoints\n(RG_AUDIT_SIGNING_KEY, RG_AUDIT_CHECKPOINT_DIR; see docs/auditors.md)',
    run: server('audit-worker', 'audit', async () => ({ api: false, audit: (await roles.auditConfig()).loadAuditWorkerConfig() })),
  },
  'skip-event': {
    synopsis: 'skip-event <projector> --seq N --reason "…" [--actor who]',
    summary: 'record a failed event as skipped and move the projector past it',
    run: async (args, config) => {
      const { parseSkipArgs, runSkip } = await roles.skip();
      const cmd = parseSkipArgs(args);
      return role(config, 'skip', (rt) => runSkip(rt, cmd));
    },
  },
  'nats-config': {
    synopsis: 'nats-config [--host H] [--port N] [--store-dir DIR] [--name N --routes H:P,H:P,H:P [--cluster-port P] [--cluster-name C] [--domain D]]',
    summary:
      "print a nats-server config with Relaygrid's account and users\n(passwords from NATS_OPERATOR_/SERVICE_/ANALYST_/AUDIT_/GATEWAY_PASSWORD,\nenrolled nodes' users from DATABASE_URL); with --routes, one cluster member's\n(run once per node with its own --name; route password from NATS_CLUSTER_PASSWORD)",
    run: async (args, config) => (await roles.natsConfig()).runNatsConfig(config(), args),
  },
  replay: {
    synopsis: 'replay <command>',
    summary: 'schemas, export, rebuild, state, into, audit\n(`relaygrid replay --help`)',
    help: async (args) => (await roles.replay()).replayHelp(args),
    run: async (args, config) => (await roles.replay()).runReplay(config(), args),
  },
  users: {
    synopsis: 'users <command>',
    summary: 'create the first admin, suspend, reinstate, grant or revoke\nroles, list (`relaygrid users --help`)',
    help: async () => (await roles.users()).USERS_USAGE,
    run: async (args, config) => {
      const { parseUsersArgs, runUsers, USERS_USAGE } = await roles.users();
      const cmd = await parseUsersArgs(args);
      if (cmd.command === 'usage') console.log(USERS_USAGE);
      else await role(config, 'users', (rt) => runUsers(rt, cmd));
    },
  },
  plans: {
    synopsis: 'plans <command>',
    summary: 'the plan catalogue: list, create, update, retire; subscribe a\nuser to a plan, grant bytes (`relaygrid plans --help`)',
    help: async () => (await roles.plans()).PLANS_USAGE,
    run: async (args, config) => {
      const { parsePlansArgs, runPlans, PLANS_USAGE } = await roles.plans();
      const cmd = parsePlansArgs(args);
      if (cmd.command === 'usage') console.log(PLANS_USAGE);
      else await role(config, 'plans', (rt) => runPlans(rt, cmd));
    },
  },
  billing: {
    synopsis: 'billing <command>',
    summary: 'orders and invoices: list, confirm a manual payment, cancel,\nrefund, revenue (`relaygrid billing --help`)',
    help: async () => (await roles.billing()).BILLING_USAGE,
    run: async (args, config) => {
      const { parseBillingArgs, runBilling, BILLING_USAGE } = await roles.billing();
      const cmd = parseBillingArgs(args);
      if (cmd.command === 'usage') console.log(BILLING_USAGE);
      else await role(config, 'billing', (rt) => runBilling(rt, cmd));
    },
  },
};

const COLUMN = 24;

function usage(): string {
  const indent = (text: string) => text.replaceAll('\n', `\n${' '.repeat(COLUMN)}`);
  const entries = Object.values(COMMANDS).map(({ synopsis, summary }) =>
    synopsis.length < COLUMN - 3 && !synopsis.includes('\n')
      ? `  ${synopsis.padEnd(COLUMN - 2)}${indent(summary)}`
      : `  ${synopsis.replaceAll('\n', '\n  ')}\n${' '.repeat(COLUMN)}${indent(summary)}`,
  );
  return `usage: relaygrid <command> [--help]

commands:
${entries.join('\n')}

configuration (environment): NATS_URL, DATABASE_URL, REDIS_URL, RG_NAMESPACE,
  RG_MASTER_KEY, RG_API_PORT, RG_GATEWAY_PORT, RG_PROJECTOR_PORT, RG_FLEET_WORKER_PORT and
  RG_AUDIT_WORKER_PORT (/health, /ready and /metrics of roles run alone), RG_STREAM_REPLICAS,
  LOG_LEVEL and the RG_* auth and messenger limits — see README.md. Unset, the commands take NATS_URL,
  DATABASE_URL, REDIS_URL, RG_NAMESPACE and the development RG_MASTER_KEY from the stack
  \`npm start\` runs in this folder (.relaygrid/stack.json), and say so on stderr.`;
}

/** `--help`/`-h` anywhere before a `--` that ends the options. */
function wantsHelp(args: string[]): boolean {
  const end = args.indexOf('--');
  return (end === -1 ? args : args.slice(0, end)).some((arg) => arg === '--help' || arg === '-h');
}

function loadFromStack(): Config {
  const { env, notice } = envFromStack(process.env);
  // stderr: stdout stays what the command prints, for scripts to parse.
  if (notice) console.error(`relaygrid: ${notice}`);
  return loadConfig(env);
}

async function main(argv: string[]): Promise<void> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    console.log(usage());
    return;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(`unknown command "${name}"\n\n${usage()}`);
  if (wantsHelp(args)) {
    console.log((await command.help?.(args)) ?? `usage: relaygrid ${command.synopsis}\n\n${command.summary}`);
    return;
  }
  let config: Config | undefined;
  return command.run(args, () => (config ??= loadFromStack()));
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
    void roles.logger().then(({ createLogger }) => {
      createLogger('error').fatal({ err }, 'relaygrid failed');
      console.error(`relaygrid: ${(err as Error).message}`);
      process.exit(1);
    });
  },
);
