/**
 * `relaygrid nats-config [--host H] [--port N] [--store-dir DIR]`: prints the nats-server
 * configuration with Relaygrid's account and users (infra/nats/server-config.ts),
 * including one user per enrolled node agent, read from the fleet read model.
 * Passwords come from the environment, never from arguments (they would show
 * in the process list).
 *
 * A cluster member's: `--name N --routes h1:6222,h2:6222,h3:6222 [--cluster-port 6222]
 * [--cluster-name C] [--domain D]`, run once per node with its own `--name`;
 * the route password comes from NATS_CLUSTER_PASSWORD.
 */
import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { ConfigError } from '../config.js';
import { natsServerConfig, type ClusterMember, type NodeUser } from '../nats/server-config.js';
import { createDb, createPool } from '../../schema/db.js';

/**
 * Enrolled, unretired node agents from the fleet read model (bcrypt hashes only).
 * A fresh install has no fleet tables yet: no nodes.
 */
export async function enrolledNodes(databaseUrl: string): Promise<NodeUser[]> {
  const db = createDb(createPool(databaseUrl, 1));
  try {
    const rows = await db.selectFrom('fleet_nodes').select(['id', 'nats_user', 'nats_password_hash']).where('retired', '=', false).where('nats_user', 'is not', null).orderBy('id').execute();
    return rows.map((r) => ({ nodeId: r.id, user: r.nats_user!, passwordHash: r.nats_password_hash! }));
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') return [];
    throw err;
  } finally {
    await db.destroy();
  }
}

const PASSWORD_VARIABLES = { operator: 'NATS_OPERATOR_PASSWORD', service: 'NATS_SERVICE_PASSWORD', analyst: 'NATS_ANALYST_PASSWORD', audit: 'NATS_AUDIT_PASSWORD', gateway: 'NATS_GATEWAY_PASSWORD', console: 'NATS_CONSOLE_PASSWORD' } as const;

const OPTIONS = {
  host: { type: 'string', default: '0.0.0.0' },
  port: { type: 'string', default: '4222' },
  'store-dir': { type: 'string', default: '/var/lib/nats-server' },
  name: { type: 'string' },
  routes: { type: 'string' },
  'cluster-port': { type: 'string', default: '6222' },
  'cluster-name': { type: 'string' },
  domain: { type: 'string' },
} as const;

type Env = Record<string, string | undefined>;

function portOption(option: string, raw: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError(option, `"${raw}" is not a port`);
  return port;
}

function secret(env: Env, variable: string, what: string): string {
  const value = env[variable];
  if (!value || value.length < 16) throw new ConfigError(variable, `${what}, at least 16 characters`);
  return value;
}

/** The cluster options, checked; undefined without `--routes` (a single server). */
export function clusterMember(namespace: string, values: { host: string; name?: string; routes?: string; 'cluster-port': string; 'cluster-name'?: string; domain?: string }, env: Env): ClusterMember | undefined {
  const clusterOnly = (['name', 'cluster-name', 'domain'] as const).find((option) => values[option] !== undefined);
  if (values.routes === undefined) {
    if (clusterOnly) throw new ConfigError(`--${clusterOnly}`, 'only for a cluster member: give --routes too');
    return undefined;
  }
  const routes = values.routes.split(',').map((r) => r.trim()).filter((r) => r !== '');
  for (const route of routes) if (!/^[^\s:/@]+:\d{1,5}$/.test(route)) throw new ConfigError('--routes', `"${route}" is not host:port`);
  // A cluster of two loses its quorum with either node: JetStream needs three to survive one failure.
  if (routes.length < 3) throw new ConfigError('--routes', `a cluster needs at least 3 members (every member's host:port, this one's included); got ${routes.length}`);
  if (!values.name) throw new ConfigError('--name', "this member's server name, unique in the cluster");
  return {
    name: values['cluster-name'] ?? `relaygrid-${namespace}`,
    host: values.host,
    port: portOption('--cluster-port', values['cluster-port']),
    routes,
    password: secret(env, 'NATS_CLUSTER_PASSWORD', 'the routes\' shared password'),
    ...(values.domain ? { domain: values.domain } : {}),
  };
}

export async function runNatsConfig(config: Config, args: string[], env: Env = process.env): Promise<void> {
  const { values } = parseArgs({ args, options: OPTIONS });
  const port = portOption('--port', values.port);
  const cluster = clusterMember(config.namespace, values, env);
  const password = (user: keyof typeof PASSWORD_VARIABLES) => secret(env, PASSWORD_VARIABLES[user], `the ${user} user's password`);
  console.log(
    natsServerConfig({
      namespace: config.namespace,
      host: values.host,
      port,
      storeDir: values['store-dir'],
      passwords: { operator: password('operator'), service: password('service'), analyst: password('analyst'), audit: password('audit'), gateway: password('gateway'), ...(env[PASSWORD_VARIABLES.console] === undefined ? {} : { console: password('console') }) },
      nodes: await enrolledNodes(config.databaseUrl),
      ...(cluster ? { cluster, serverName: values.name } : {}),
    }),
  );
}
