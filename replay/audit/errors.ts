/**
 * How an audit ends when it does not pass, each printed like a bad argument,
 * as one line without a stack trace (an auditor needs the finding, not our
 * call stack), each with its own exit code so a script can tell them apart:
 *
 *   1  the log does not match its signed checkpoints (altered, removed,
 *      reordered or inserted leaves, a fork, inconsistent checkpoints), or a
 *      proof does not verify
 *   2  bad arguments (ReplayArgumentError)
 *   3  a checkpoint is not signed by the verifier key (wrong key, or a forged
 *      or damaged checkpoint): nothing could be checked against it
 *   4  the export file is not a complete, readable export (wrong format or
 *      version, a malformed line, cut off before its last line)
 */
import { CliError } from '../../infra/cli/cli-error.js';

export class AuditFailedError extends CliError {
  override readonly name = 'AuditFailedError';
  override readonly exitCode = 1;
}

export class CheckpointKeyError extends CliError {
  override readonly name = 'CheckpointKeyError';
  override readonly exitCode = 3;
}

export class ExportFormatError extends CliError {
  override readonly name = 'ExportFormatError';
  override readonly exitCode = 4;
}
