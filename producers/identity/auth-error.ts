/** Raised for every authentication or abuse-limit refusal a client may see; `status` is the HTTP answer. */
export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}
