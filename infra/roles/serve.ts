/** Running roles in the foreground until a signal, and the `migrate` report. */
import { migrate } from '../migrate.js';
import type { Runtime } from '../runtime.js';
import { readinessProbe, type Check, type ReadinessReport } from '../readiness.js';
import { startOpsServer, type RunningOpsServer } from '../ops-server.js';
import { ConfigError, type OpsPorts } from '../config.js';
import { startApi } from './api.js';
import { startGateway } from './gateway.js';
import { startProjectors, type RunningProjectors } from './projectors.js';
import { startFleetWorker, type RunningFleetWorker } from './fleet.js';
import { startAuditWorker, type AuditWorker, type AuditWorkerStatus } from '../../workers/audit/audit-worker.js';
import type { AuditWorkerConfig } from '../../workers/audit/config.js';

/** Resolves on the first SIGINT/SIGTERM. */
export function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const onSignal = (signal: string) => resolve(signal);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
}

export async function runMigrate(rt: Runtime): Promise<void> {
  const report = await migrate({ ...rt, replicas: rt.config.streamReplicas });
  const changed = report.streams.filter((s) => s.action !== 'unchanged').length;
  console.log(
    `migrated: ${report.streams.length} streams (${changed} created or updated), ` +
      `${report.schemas.published} schemas published (${report.schemas.unchanged} already there), ` +
      `${report.tables.length} Postgres migrations applied`,
  );
}

export interface Roles {
  api: boolean;
  gateway?: boolean;
  fleet?: boolean;
  projectors?: string[];
  audit?: AuditWorkerConfig;
}

const STARTING: Check = { ok: false, detail: 'starting' };

/** The audit worker runs or stands by; starting (or retrying) and closed are not ready. */
function auditCheck(status: AuditWorkerStatus): Check {
  if (status.state === 'running') return { ok: true };
  if (status.state === 'standby') return { ok: true, detail: 'standby: another instance holds the lock' };
  return { ok: false, detail: status.state };
}

/** The role whose port serves /health, /ready and /metrics when neither the API nor the gateway runs here. */
function opsPortOf(ports: OpsPorts, roles: Roles): { role: string; port: number; variable: string } | undefined {
  if (roles.api || roles.gateway) return undefined;
  if (roles.projectors) return { role: 'projector', port: ports.projector, variable: 'RG_PROJECTOR_PORT' };
  if (roles.fleet) return { role: 'fleet-worker', port: ports.fleetWorker, variable: 'RG_FLEET_WORKER_PORT' };
  if (roles.audit) return { role: 'audit-worker', port: ports.auditWorker, variable: 'RG_AUDIT_WORKER_PORT' };
  return undefined;
}

async function startOps(rt: Runtime, roles: Roles, readiness: () => Promise<ReadinessReport>): Promise<{ role: string; server: RunningOpsServer } | undefined> {
  const ops = opsPortOf(rt.config.opsPorts, roles);
  if (!ops) return undefined;
  try {
    return { role: ops.role, server: await startOpsServer({ role: ops.role, port: ops.port, metrics: rt.metrics, readiness, log: rt.log }) };
  } catch (err) {
    if ((err as { code?: string }).code !== 'EADDRINUSE') throw err;
    throw new ConfigError(ops.variable, `port ${ops.port} is in use: give each ${ops.role} on this host a port of its own (0 picks a free one)`);
  }
}

/**
 * Runs the API, the gateway, the fleet worker, projectors and/or the audit worker until SIGINT/SIGTERM
 * (or `until`, which `start` listens for from before its services start), then stops them in order.
 * One readiness for the process covers every role in it: the API and the gateway serve it on their ports, the other roles on their own.
 */
export async function serve(rt: Runtime, roles: Roles, until: Promise<string> = untilSignal()): Promise<void> {
  // Filled in as each role starts: /ready may be asked before the last one has.
  const started: { projectors?: RunningProjectors; audit?: AuditWorker; fleet?: RunningFleetWorker } = {};
  const readiness = readinessProbe({
    nats: rt.nats,
    db: rt.db,
    // Only the API and the gateway use Redis.
    ...(roles.api || roles.gateway ? { redis: rt.redis } : {}),
    projectors: () => started.projectors?.projectors.map((p) => p.status()) ?? [],
    roles: () => {
      const checks: Record<string, Check> = {};
      if (roles.projectors && !started.projectors) checks['projectors'] = STARTING;
      if (roles.audit) checks['audit-worker'] = started.audit ? auditCheck(started.audit.status()) : STARTING;
      if (roles.fleet) checks['fleet-worker'] = started.fleet ? { ok: true } : STARTING;
      return checks;
    },
  });
  // First, so that a port in use stops the process before any role has started.
  const ops = await startOps(rt, roles, readiness);
  const projectors = roles.projectors ? startProjectors(rt, roles.projectors.length > 0 ? roles.projectors : undefined) : undefined;
  started.projectors = projectors;
  const audit = roles.audit ? await startAuditWorker(rt, roles.audit) : undefined;
  started.audit = audit;
  const api = roles.api ? await startApi(rt, { readiness }) : undefined;
  if (api) console.log(`Relaygrid API listening on ${api.url}`);
  const gateway = roles.gateway ? await startGateway(rt, { readiness }) : undefined;
  if (gateway) console.log(`Relaygrid gateway listening on ${gateway.url}`);
  const fleet = roles.fleet ? await startFleetWorker(rt) : undefined;
  started.fleet = fleet;
  if (fleet) console.log(`Relaygrid fleet worker serving agents on ${rt.names.prefix}.fleet.agent.* and operators on ${rt.names.opsGroup}.>`);
  if (roles.audit) console.log(`audit checkpoints signed by ${roles.audit.signer.name} go to ${roles.audit.checkpointDir}`);
  if (ops) console.log(`Relaygrid ${ops.role} serving /health, /ready and /metrics on ${ops.server.url}`);
  const signal = await until;
  rt.log.info({ signal }, 'stopping');
  await ops?.server.close();
  await fleet?.close();
  await gateway?.close();
  await api?.close();
  await audit?.close();
  await projectors?.close();
}
