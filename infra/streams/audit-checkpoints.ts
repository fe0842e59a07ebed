/**
 * `<NS>_AUDIT_CHECKPOINTS`: the signed checkpoints of the audit log, one
 * message per checkpoint on `<ns>.audit.checkpoint`, kept forever. `migrate`
 * creates it with the other streams; the audit worker applies it too (a no-op
 * when it is as declared, which is all service credentials allow). The
 * checkpoints are also written to a directory outside NATS, so losing this
 * stream loses nothing an auditor needs.
 */
import type { Names } from '../naming.js';
import type { Nats } from '../nats/connection.js';
import { applyStream, type ApplyOutcome } from './apply.js';
import { immutableLog, type StreamSpec } from './definitions.js';

export function auditCheckpointStreamName(names: Names): string {
  return `${names.auditStream}_CHECKPOINTS`;
}

export function auditCheckpointSubject(names: Names): string {
  return `${names.prefix}.audit.checkpoint`;
}

export function auditCheckpointStream(names: Names, replicas: number): StreamSpec {
  return {
    name: auditCheckpointStreamName(names),
    description: `Relaygrid audit log: signed checkpoints of ${names.auditStream} (${names.namespace})`,
    subjects: [auditCheckpointSubject(names)],
    // A checkpoint re-published after a crash carries the same Nats-Msg-Id: the duplicate window drops it.
    ...immutableLog(replicas),
  };
}

/** Creates or updates the checkpoint stream; idempotent. */
export function applyAuditCheckpointStream(nats: Nats, names: Names, replicas: number): Promise<ApplyOutcome> {
  return applyStream(nats.jsm, auditCheckpointStream(names, replicas));
}
