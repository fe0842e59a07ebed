/** Running roles in the foreground until a signal, and the `migrate` report. */
import { migrate } from '../migrate.js';
import type { Runtime } from '../runtime.js';
import { startApi } from './api.js';
import { startGateway } from './gateway.js';
import { startProjectors } from './projectors.js';
import { startFleetWorker } from './fleet.js';
import { startAuditWorker } from '../../workers/audit/audit-worker.js';
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

/** Runs the API, the gateway, the fleet worker, projectors and/or the audit worker until SIGINT/SIGTERM, then stops them in order. */
export async function serve(rt: Runtime, roles: { api: boolean; gateway?: boolean; fleet?: boolean; projectors?: string[]; audit?: AuditWorkerConfig }): Promise<void> {
  const projectors = roles.projectors ? startProjectors(rt, roles.projectors.length > 0 ? roles.projectors : undefined) : undefined;
  const audit = roles.audit ? await startAuditWorker(rt, roles.audit) : undefined;
  const api = roles.api ? await startApi(rt, { projectorStatus: () => projectors?.projectors.map((p) => p.status()) ?? [] }) : undefined;
  if (api) console.log(`Relaygrid API listening on ${api.url}`);
  const gateway = roles.gateway ? await startGateway(rt) : undefined;
  if (gateway) console.log(`Relaygrid gateway listening on ${gateway.url}`);
  const fleet = roles.fleet ? await startFleetWorker(rt) : undefined;
  if (fleet) console.log(`Relaygrid fleet worker serving agents on ${rt.names.prefix}.fleet.agent.* and operators on ${rt.names.opsGroup}.>`);
  if (roles.audit) console.log(`audit checkpoints signed by ${roles.audit.signer.name} go to ${roles.audit.checkpointDir}`);
  const signal = await untilSignal();
  rt.log.info({ signal }, 'stopping');
  await fleet?.close();
  await gateway?.close();
  await api?.close();
  await audit?.close();
  await projectors?.close();
}
