/**
 * Configuration comes only from environment variables, validated once at start.
 * A bad value fails fast with a message that names the variable, so an operator
 * never has to guess which of a dozen settings is wrong.
 */
import { stripeConfig, type StripeConfig } from './stripe-config.js';
import { billingConfig, type BillingConfig } from './billing-config.js';
import { notifyConfig, type NotifyConfig } from './notify-config.js';

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
  /** Where the roles without a port of their own serve /health, /ready and /metrics. */
  opsPorts: OpsPorts;
  /** Stream replicas: 1 on one machine, 3 on a cluster. */
  streamReplicas: number;
  logLevel: string;
  /**
   * RG_MASTER_KEY (32 bytes, base64): wraps every person's data key and derives
   * the JWT signing key and the email index key. Required by the roles that
   * touch identity data; `start` creates one under .relaygrid/ when unset.
   */
  masterKey: Buffer | undefined;
  auth: AuthConfig;
  messaging: MessagingConfig;
  /** The Stripe payment provider (infra/stripe-config.ts); null when RG_STRIPE_SECRET_KEY is unset. */
  stripe: StripeConfig | null;
  webhooks: WebhookConfig;
  /** Tax rates, the seller's zone and name (infra/billing-config.ts). */
  billing: BillingConfig;
  analytics: AnalyticsConfig;
  /** Mail and links of the notifier (infra/notify-config.ts). */
  notify: NotifyConfig;
}

/** Analytics exports (docs/analytics.md#exports). */
export interface AnalyticsConfig {
  /** RG_EXPORT_DIR: where finished exports wait for their download (default: the system's temp folder). */
  exportDir: string | null;
  /** RG_EXPORT_LINK_TTL: how long a download link is good for, in seconds. */
  exportLinkTtlSeconds: number;
}

/** Outgoing webhooks (docs/billing-webhooks.md). */
export interface WebhookConfig {
  /** RG_WEBHOOK_ALLOW_PRIVATE: endpoints on loopback and private addresses allowed (refused by default: SSRF). */
  allowPrivateTargets: boolean;
  /** RG_WEBHOOK_TIMEOUT_MS: an attempt with no answer within this long has failed. */
  timeoutMs: number;
}

/** One port per role, so that roles run alone on one host do not collide. */
export interface OpsPorts {
  projector: number;
  fleetWorker: number;
  auditWorker: number;
}

/** The messenger gateway's retention and limits (docs/messaging.md). */
export interface MessagingConfig {
  /** Undelivered inbox entries are removed this long after they were sent (RG_INBOX_RETENTION_DAYS). */
  inboxRetentionSeconds: number;
  /** Largest WebSocket frame accepted; larger closes the connection with 1009. */
  maxFrameBytes: number;
  /** Largest ciphertext (one `body`, decoded) in a send. */
  maxMessageBytes: number;
  /** Sends per connection per second (token bucket, burst of the same size). */
  sendsPerSecond: number;
  /** Sends from one user to one recipient (user or group) per minute. */
  pairSendsPerMinute: number;
  /** Presence entries expire this long after the gateway's last heartbeat. */
  presenceTtlSeconds: number;
  /** A user is announced offline only after being gone this long (a reconnect in between says nothing). */
  offlineDebounceMs: number;
  /** A connection whose unsent output exceeds this is closed with 4008. */
  maxBackpressureBytes: number;
}

export interface AuthConfig {
  accessTokenTtlSeconds: number;
  refreshTokenTtlSeconds: number;
  /** Login attempts per client IP per minute. */
  loginPerIpPerMinute: number;
  /** Login attempts per account (email) per minute. */
  loginPerAccountPerMinute: number;
  registerPerIpPerHour: number;
  /** Consecutive failed logins after which the account is locked… */
  lockoutThreshold: number;
  /** …for this long. */
  lockoutSeconds: number;
  /**
   * Which X-Forwarded-For entries to believe for the client IP: false (none),
   * a hop count (the addresses the N nearest proxies appended), a list of proxy
   * addresses/CIDRs, or true (every entry: only when the edge overwrites the
   * header, since a client can write its own).
   */
  trustProxy: boolean | number | string;
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
  opsPorts: { projector: 8082, fleetWorker: 8083, auditWorker: 8084 },
  streamReplicas: 1,
  logLevel: 'info',
  auth: {
    accessTokenTtlSeconds: 300,
    refreshTokenTtlSeconds: 30 * 24 * 3600,
    loginPerIpPerMinute: 30,
    loginPerAccountPerMinute: 10,
    registerPerIpPerHour: 20,
    lockoutThreshold: 5,
    lockoutSeconds: 900,
    trustProxy: false,
  },
  messaging: {
    inboxRetentionDays: 30,
    maxFrameBytes: 256 * 1024,
    maxMessageBytes: 64 * 1024,
    sendsPerSecond: 50,
    pairSendsPerMinute: 600,
    presenceTtlSeconds: 30,
    offlineDebounceMs: 2000,
    maxBackpressureBytes: 1024 * 1024,
  },
  webhooks: { allowPrivateTargets: false, timeoutMs: 10_000 },
  analytics: { exportLinkTtlSeconds: 900 },
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

const MASTER_KEY_HINT = '32 random bytes, base64 (e.g. `openssl rand -base64 32`)';

function masterKey(env: Env): Buffer | undefined {
  const raw = env['RG_MASTER_KEY'];
  if (raw === undefined || raw === '') return undefined;
  const key = Buffer.from(raw.trim(), 'base64');
  if (key.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(raw.trim())) throw new ConfigError('RG_MASTER_KEY', `must be ${MASTER_KEY_HINT}`);
  return key;
}

function flag(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw.trim().toLowerCase())) return true;
  if (['0', 'false', 'no'].includes(raw.trim().toLowerCase())) return false;
  throw new ConfigError(name, `"${raw}" is not true or false`);
}

function trustProxy(env: Env): boolean | number | string {
  const raw = env['RG_TRUST_PROXY']?.trim();
  if (raw && /^\d{1,2}$/.test(raw)) return Number(raw);
  if (raw && /^[0-9a-fA-F.:/]+(,\s*[0-9a-fA-F.:/]+)*$/.test(raw) && /[.:]/.test(raw)) return raw;
  try {
    return flag(env, 'RG_TRUST_PROXY', DEFAULTS.auth.trustProxy);
  } catch {
    throw new ConfigError('RG_TRUST_PROXY', `"${raw}" is not true, false, a hop count or a list of proxy addresses`);
  }
}

function authConfig(env: Env): AuthConfig {
  const d = DEFAULTS.auth;
  return {
    accessTokenTtlSeconds: integer(env, 'RG_ACCESS_TOKEN_TTL', d.accessTokenTtlSeconds, 30, 3600),
    refreshTokenTtlSeconds: integer(env, 'RG_REFRESH_TOKEN_TTL', d.refreshTokenTtlSeconds, 300, 365 * 24 * 3600),
    loginPerIpPerMinute: integer(env, 'RG_LOGIN_LIMIT_PER_IP', d.loginPerIpPerMinute, 1, 1_000_000),
    loginPerAccountPerMinute: integer(env, 'RG_LOGIN_LIMIT_PER_ACCOUNT', d.loginPerAccountPerMinute, 1, 1_000_000),
    registerPerIpPerHour: integer(env, 'RG_REGISTER_LIMIT_PER_IP', d.registerPerIpPerHour, 1, 1_000_000),
    lockoutThreshold: integer(env, 'RG_LOCKOUT_THRESHOLD', d.lockoutThreshold, 1, 1000),
    lockoutSeconds: integer(env, 'RG_LOCKOUT_SECONDS', d.lockoutSeconds, 1, 7 * 24 * 3600),
    trustProxy: trustProxy(env),
  };
}

function messagingConfig(env: Env): MessagingConfig {
  const d = DEFAULTS.messaging;
  return {
    inboxRetentionSeconds: integer(env, 'RG_INBOX_RETENTION_DAYS', d.inboxRetentionDays, 1, 3650) * 24 * 3600,
    maxFrameBytes: integer(env, 'RG_WS_MAX_FRAME_BYTES', d.maxFrameBytes, 1024, 16 * 1024 * 1024),
    maxMessageBytes: integer(env, 'RG_WS_MAX_MESSAGE_BYTES', d.maxMessageBytes, 256, 16 * 1024 * 1024),
    sendsPerSecond: integer(env, 'RG_WS_SENDS_PER_SECOND', d.sendsPerSecond, 1, 1_000_000),
    pairSendsPerMinute: integer(env, 'RG_WS_PAIR_SENDS_PER_MINUTE', d.pairSendsPerMinute, 1, 10_000_000),
    presenceTtlSeconds: integer(env, 'RG_PRESENCE_TTL', d.presenceTtlSeconds, 3, 3600),
    offlineDebounceMs: integer(env, 'RG_PRESENCE_OFFLINE_DEBOUNCE_MS', d.offlineDebounceMs, 0, 600_000),
    maxBackpressureBytes: integer(env, 'RG_WS_MAX_BACKPRESSURE_BYTES', d.maxBackpressureBytes, 16 * 1024, 1024 * 1024 * 1024),
  };
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
    opsPorts: {
      projector: integer(env, 'RG_PROJECTOR_PORT', DEFAULTS.opsPorts.projector, 0, 65535),
      fleetWorker: integer(env, 'RG_FLEET_WORKER_PORT', DEFAULTS.opsPorts.fleetWorker, 0, 65535),
      auditWorker: integer(env, 'RG_AUDIT_WORKER_PORT', DEFAULTS.opsPorts.auditWorker, 0, 65535),
    },
    streamReplicas: integer(env, 'RG_STREAM_REPLICAS', DEFAULTS.streamReplicas, 1, 5),
    logLevel,
    masterKey: masterKey(env),
    auth: authConfig(env),
    messaging: messagingConfig(env),
    webhooks: {
      allowPrivateTargets: flag(env, 'RG_WEBHOOK_ALLOW_PRIVATE', DEFAULTS.webhooks.allowPrivateTargets),
      timeoutMs: integer(env, 'RG_WEBHOOK_TIMEOUT_MS', DEFAULTS.webhooks.timeoutMs, 100, 120_000),
    },
    stripe: stripeConfig(env),
    billing: billingConfig(env),
    analytics: {
      exportDir: env['RG_EXPORT_DIR']?.trim() || null,
      exportLinkTtlSeconds: integer(env, 'RG_EXPORT_LINK_TTL', DEFAULTS.analytics.exportLinkTtlSeconds, 10, 7 * 24 * 3600),
    },
    notify: notifyConfig(env),
  };
}

/** The master key, for the roles that cannot run without it. */
export function requireMasterKey(config: Config): Buffer {
  if (!config.masterKey) throw new ConfigError('RG_MASTER_KEY', `is not set: it must be ${MASTER_KEY_HINT}`);
  return config.masterKey;
}

export function configSources(env: Env = process.env): ConfigSources {
  const set = (name: string) => env[name] !== undefined && env[name] !== '';
  return { natsUrl: set('NATS_URL'), databaseUrl: set('DATABASE_URL'), redisUrl: set('REDIS_URL') };
}

/**
 * RG_STACK_NATS_PORT, RG_STACK_POSTGRES_PORT, RG_STACK_REDIS_PORT: where
 * `start` looks for a local service whose URL is unset, and the port it
 * prefers for the one it starts (defaults: the default URLs' ports). For a
 * machine where those ports belong to something else, and for tests.
 */
export function localStackPorts(env: Env = process.env): Partial<Record<'nats' | 'postgres' | 'redis', number>> {
  const ports: Partial<Record<'nats' | 'postgres' | 'redis', number>> = {};
  for (const service of ['nats', 'postgres', 'redis'] as const) {
    const name = `RG_STACK_${service.toUpperCase()}_PORT`;
    if (env[name] !== undefined && env[name] !== '') ports[service] = integer(env, name, 0, 1, 65535);
  }
  return ports;
}
