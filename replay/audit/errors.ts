/**
 * A failed audit: tampering found, a bad signature, a proof that does not
 * verify. Printed like a bad argument, as one line without a stack trace (an
 * auditor needs the finding, not our call stack), but with exit code 1: the
 * command ran and the log failed the check.
 */
import { ReplayArgumentError } from '../range.js';

export class AuditFailedError extends ReplayArgumentError {
  override readonly name = 'AuditFailedError';
  readonly exitCode = 1;
}
