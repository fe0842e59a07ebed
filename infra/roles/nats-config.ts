/**
 * `relaygrid nats-config [--host H] [--port N] [--store-dir DIR]`: prints the nats-server
 * configuration with Relaygrid's account and users (infra/nats/server-config.ts),
 * including one user per enrolled node agent, read from the fleet read model.
 * Passwords come from the environment, never from arguments (they would show
 * in the process list).
 */
import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { ConfigError } from '../config.js';
import { natsServerConfig, type NodeUser } from '../nats/server-config.js';
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

export async function runNatsConfig(config: Config, args: string[], env: Record<string, string | undefined> = process.env): Promise<void> {
  const { values } = parseArgs({ args, options: { host: { type: 'string', default: '0.0.0.0' }, port: { type: 'string', default: '4222' }, 'store-dir': { type: 'string', default: '/var/lib/nats-server' } } });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new ConfigError('--port', `"${values.port}" is not a port`);
  const password = (user: keyof typeof PASSWORD_VARIABLES) => {
    const value = env[PASSWORD_VARIABLES[user]];
    if (!value || value.length < 16) throw new ConfigError(PASSWORD_VARIABLES[user], `the ${user} user's password, at least 16 characters`);
    return value;
  };
  console.log(
    natsServerConfig({
      namespace: config.namespace,
      host: values.host,
      port,
      storeDir: values['store-dir'],
      passwords: { operator: password('operator'), service: password('service'), analyst: password('analyst'), audit: password('audit'), gateway: password('gateway'), ...(env[PASSWORD_VARIABLES.console] === undefined ? {} : { console: password('console') }) },
      nodes: await enrolledNodes(config.databaseUrl),
    }),
  );
}
