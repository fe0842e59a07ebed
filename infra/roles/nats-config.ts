/**
 * `relaygrid nats-config [--host H] [--port N] [--store-dir DIR]`: prints the nats-server
 * configuration with Relaygrid's account and users (infra/nats/server-config.ts).
 * Passwords come from the environment, never from arguments (they would show
 * in the process list).
 */
import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { ConfigError } from '../config.js';
import { natsServerConfig } from '../nats/server-config.js';

const PASSWORD_VARIABLES = { operator: 'NATS_OPERATOR_PASSWORD', service: 'NATS_SERVICE_PASSWORD', analyst: 'NATS_ANALYST_PASSWORD', audit: 'NATS_AUDIT_PASSWORD', gateway: 'NATS_GATEWAY_PASSWORD' } as const;

export function runNatsConfig(config: Config, args: string[], env: Record<string, string | undefined> = process.env): void {
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
      passwords: { operator: password('operator'), service: password('service'), analyst: password('analyst'), audit: password('audit'), gateway: password('gateway') },
    }),
  );
}
