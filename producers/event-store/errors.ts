/** The aggregate changed between load and append more often than we were willing to retry. */
export class ConcurrencyConflictError extends Error {
  readonly code = 'conflict';
  constructor(
    readonly subject: string,
    readonly attempts: number,
  ) {
    super(`${subject} kept changing: gave up after ${attempts} attempts`);
    this.name = 'ConcurrencyConflictError';
  }
}

/** JetStream refused the append because the subject's last sequence was not the one expected. */
export class WrongExpectedSequenceError extends Error {
  readonly code = 'wrong_expected_sequence';
  constructor(
    readonly subject: string,
    readonly expected: number,
  ) {
    super(`${subject}: last sequence is not ${expected}`);
    this.name = 'WrongExpectedSequenceError';
  }
}
