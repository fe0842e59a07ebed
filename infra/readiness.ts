/**
 * Readiness: the process can do its job. Each dependency its roles use answers
 * (NATS and Postgres always, Redis for the API and the gateway), every
 * projector runs or stands by with its lag known, and every worker in the
 * process runs or stands by (docs/operations.md#health).
 */
import type { Redis } from 'ioredis';
import { sql, type Kysely } from 'kysely';
import type { ProjectorStatus } from '../projectors/runtime/projector.js';
import type { Database } from '../schema/database.js';
import type { Nats } from './nats/connection.js';

export interface Check {
  ok: boolean;
  detail?: string;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, Check>;
  projectors: ProjectorStatus[];
}

export interface ReadinessDeps {
  nats: Nats;
  db: Kysely<Database>;
  /** Only for the roles that use Redis. */
  redis?: Redis;
  projectors?: () => ProjectorStatus[];
  /** Checks of the other roles in the process (the audit worker's, say), by name. */
  roles?: () => Record<string, Check>;
}

/** A dependency that does not answer within this long is down: a probe must answer before the balancer gives up on it. */
const CHECK_TIMEOUT_MS = 2000;

async function check(fn: () => Promise<unknown>): Promise<Check> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    await Promise.race([fn(), timeout]);
    return { ok: true };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  } finally {
    clearTimeout(timer);
  }
}

/** Running or standing by, with its lag measured; starting, retrying, stopped or closed is not ready. */
export function projectorCheck(p: ProjectorStatus): Check {
  switch (p.state) {
    case 'stopped':
      return { ok: false, detail: `stopped at sequence ${p.failure?.seq}: ${p.failure?.error}` };
    case 'starting':
      return { ok: false, detail: 'starting (or retrying: NATS or Postgres unavailable, or its stream missing)' };
    case 'closed':
      return { ok: false, detail: 'closed' };
    default:
      if (p.lag === null) return { ok: false, detail: 'lag not measured yet' };
      return p.state === 'standby' ? { ok: true, detail: 'standby: another instance holds the lock' } : { ok: true };
  }
}

export function readinessProbe(deps: ReadinessDeps): () => Promise<ReadinessReport> {
  return async () => {
    const [nats, postgres, redis] = await Promise.all([
      check(() => deps.nats.nc.flush()),
      check(() => sql`select 1`.execute(deps.db)),
      deps.redis ? check(() => deps.redis!.ping()) : undefined,
    ]);
    const checks: Record<string, Check> = { nats, postgres };
    if (redis) checks['redis'] = redis;
    const projectors = deps.projectors?.() ?? [];
    for (const p of projectors) checks[`projector:${p.name}`] = projectorCheck(p);
    Object.assign(checks, deps.roles?.());
    return { ready: Object.values(checks).every((c) => c.ok), checks, projectors };
  };
}
