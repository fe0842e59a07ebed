/**
 * A failed audit: tampering found, a bad signature, a proof that does not
 * verify. Printed like a bad argument, as one line without a stack trace (an
 * auditor needs the finding, not our call stack), but with exit code 1: the
 * command ran and the log failed the check.
 */
import { CliError } from '../../infra/cli/cli-error.js';

export class AuditFailedError extends CliError {
  override readonly name = 'AuditFailedError';
  override readonly exitCode = 1;
}
