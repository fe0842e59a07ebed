/** What an endpoint of the `relaygrid-ops` service is, and how it reads its request's fields. */
import { DomainError } from '../../producers/decider.js';

/** A request's JSON body and the operator's name (`operator:<by>`) in, the JSON answer out; a thrown error is the refusal (refusal.ts). */
export type OpsHandler = (body: Record<string, unknown>, by: string) => Promise<unknown>;

/** A non-empty string field of a request, or 400 invalid_request naming it. */
export function required(value: unknown, field: string): string {
  if (typeof value !== 'string' || value === '') throw new DomainError('invalid_request', `${field}: required`, { field });
  return value;
}
