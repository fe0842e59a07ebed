/** Readiness: each dependency answers, and no projector has stopped on a bad event. */
import type { Redis } from 'ioredis';
import { sql, type Kysely } from 'kysely';
import type { ProjectorStatus } from '../projectors/runtime/projector.js';
import type { Database } from '../schema/database.js';
import type { Nats } from './nats/connection.js';

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
  projectors: ProjectorStatus[];
}

async function check(fn: () => Promise<unknown>): Promise<{ ok: boolean; detail?: string }> {
  try {
    await fn();
    return { ok: true };
  } catch (err) {
    return { ok: false, detail: (err as Error).message };
  }
}

export function readinessProbe(deps: {
  nats: Nats;
  db: Kysely<Database>;
  redis?: Redis;
  projectors: () => ProjectorStatus[];
}): () => Promise<ReadinessReport> {
  return async () => {
    const checks: ReadinessReport['checks'] = {
      nats: await check(() => deps.nats.nc.flush()),
      postgres: await check(() => sql`select 1`.execute(deps.db)),
    };
    if (deps.redis) checks['redis'] = await check(() => deps.redis!.ping());
    const projectors = deps.projectors();
    for (const p of projectors) {
      checks[`projector:${p.name}`] =
        p.state === 'stopped' ? { ok: false, detail: `stopped at sequence ${p.failure?.seq}: ${p.failure?.error}` } : { ok: true };
    }
    return { ready: Object.values(checks).every((c) => c.ok), checks, projectors };
  };
}
