/**
 * An error the CLI reports as one line, without a stack trace: bad arguments
 * (exit 2, the default) or a check that ran and failed (its own exit code).
 */
export class CliError extends Error {
  readonly exitCode: number = 2;
}
