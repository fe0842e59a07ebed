/**
 * Configuration comes only from environment variables, validated once at start.
 * A bad value fails fast with a message that names the variable, so an operator
 * never has to guess which of a dozen settings is wrong.
 */

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

export interface Config {
  /** NATS servers, comma-separated URLs. */
  natsUrl: string;
  databaseUrl: string;
  redisUrl: string;
  /** Lower-case subject prefix (`rg`); stream and bucket names use its upper-case form (`RG_`). */
  namespace: string;
  apiPort: number;
  gatewayPort: number;
  /** Stream replicas: 1 on one machine, 3 on a cluster. */
  streamReplicas: number;
  logLevel: string;
}

/** Which variables were explicitly set: `start` only launches local services for the unset ones. */
export interface ConfigSources {
  natsUrl: boolean;
  databaseUrl: boolean;
  redisUrl: boolean;
}

export const DEFAULTS = {
  natsUrl: 'nats://127.0.0.1:4222',
  databaseUrl: 'postgres://postgres@127.0.0.1:5432/postgres',
  redisUrl: 'redis://127.0.0.1:6379',
  namespace: 'rg',
  apiPort: 8080,
  gatewayPort: 8081,
  streamReplicas: 1,
  logLevel: 'info',
} as const;

type Env = Record<string, string | undefined>;

function text(env: Env, name: string, fallback: string): string {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  return value.trim();
}

function url(env: Env, name: string, fallback: string, schemes: string[]): string {
  const value = text(env, name, fallback);
  for (const part of value.split(',')) {
    let parsed: URL;
    try {
      parsed = new URL(part.trim());
    } catch {
      throw new ConfigError(name, `"${part}" is not a URL (expected ${schemes.join(' or ')}://host:port)`);
    }
    const scheme = parsed.protocol.replace(/:$/, '');
    if (!schemes.includes(scheme)) {
      throw new ConfigError(name, `scheme "${scheme}" is not supported (expected ${schemes.join(' or ')})`);
    }
  }
  return value;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `"${raw}" is not a whole number`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(name, `${value} is outside ${min}..${max}`);
  return value;
}

export function loadConfig(env: Env = process.env): Config {
  const namespace = text(env, 'RG_NAMESPACE', DEFAULTS.namespace);
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(namespace)) {
    throw new ConfigError('RG_NAMESPACE', `"${namespace}" must be 1-32 lower-case letters, digits or '-', starting with a letter`);
  }
  const logLevel = text(env, 'LOG_LEVEL', DEFAULTS.logLevel);
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `"${logLevel}" is not one of fatal, error, warn, info, debug, trace, silent`);
  }
  return {
    natsUrl: url(env, 'NATS_URL', DEFAULTS.natsUrl, ['nats', 'tls', 'ws', 'wss']),
    databaseUrl: url(env, 'DATABASE_URL', DEFAULTS.databaseUrl, ['postgres', 'postgresql']),
    redisUrl: url(env, 'REDIS_URL', DEFAULTS.redisUrl, ['redis', 'rediss']),
    namespace,
    apiPort: integer(env, 'RG_API_PORT', DEFAULTS.apiPort, 0, 65535),
    gatewayPort: integer(env, 'RG_GATEWAY_PORT', DEFAULTS.gatewayPort, 0, 65535),
    streamReplicas: integer(env, 'RG_STREAM_REPLICAS', DEFAULTS.streamReplicas, 1, 5),
    logLevel,
  };
}

export function configSources(env: Env = process.env): ConfigSources {
  const set = (name: string) => env[name] !== undefined && env[name] !== '';
  return { natsUrl: set('NATS_URL'), databaseUrl: set('DATABASE_URL'), redisUrl: set('REDIS_URL') };
}
