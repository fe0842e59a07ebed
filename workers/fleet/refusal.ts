/**
 * What a NATS request that failed answers: the same status, stable code and
 * message the HTTP API gives for the same error (producers/api/errors.ts),
 * plus `invalid_json` for a body that does not parse. Internal errors say
 * nothing more than that, and are the caller's to log.
 */
import { toErrorResponse } from '../../producers/api/errors.js';

export interface Refusal {
  status: number;
  code: string;
  message: string;
}

export function refusal(err: unknown): Refusal {
  if (err instanceof SyntaxError) return { status: 400, code: 'invalid_json', message: err.message };
  const { status, body } = toErrorResponse(err);
  return { status, code: body.code, message: body.message };
}
