/**
 * What the OpenAPI document (`/docs`) promises for every operation: its
 * success status with the schema of its answer, and every error status it can
 * give with the error schema. Routes declare their success and the errors of
 * their own rules (`answers`); the statuses every route of a kind can give
 * (validation, the door, the body parser, the path) are added here at
 * registration, so they cannot be forgotten. A visible route without a
 * response declaration fails at startup, like one without `config.access`.
 *
 * Answers are serialized with JSON.stringify, not from these schemas
 * (app.ts): a schema that forgot a property must not silently drop it from
 * what clients get; tests/support/contract.ts catches the forgotten property
 * instead.
 */
import { STATUS_CODES } from 'node:http';
import type { FastifyInstance, RouteOptions } from 'fastify';

export type Schema = Record<string, unknown>;

/** `{code, message, field?}`: the body of every 4xx and 5xx (docs/api.md#errors). */
export const ERROR = {
  type: 'object',
  additionalProperties: false,
  required: ['code', 'message'],
  properties: {
    code: { type: 'string', pattern: '^[a-z][a-z0-9_]*$', description: 'stable, lower-case; see the error table' },
    message: { type: 'string' },
    field: { type: 'string', description: 'the field, parameter or header at fault' },
  },
} as const;

/** A closed object: every property present unless named optional, nothing else. */
export function shape(properties: Record<string, unknown>, optional: readonly string[] = []): Schema {
  return { type: 'object', additionalProperties: false, required: Object.keys(properties).filter((k) => !optional.includes(k)), properties };
}

export const nullable = (schema: { type: string } & Schema): Schema => ({ ...schema, type: [schema.type, 'null'] });
export const listOf = (items: Schema): Schema => ({ type: 'array', items });

export const STRING = { type: 'string' } as const;
export const INTEGER = { type: 'integer' } as const;
export const BOOLEAN = { type: 'boolean' } as const;
export const TIME = { type: 'string', format: 'date-time' } as const;
export const STRINGS = listOf(STRING);
/** The stream sequence of a write's event (send it back as x-min-sequence). */
export const SEQUENCE = { type: 'integer', minimum: 0 } as const;
export const WRITTEN = shape({ sequence: SEQUENCE });
/** 204: no body. */
export const NO_CONTENT = { type: 'null' } as const;

/** A read honouring `x-min-sequence`: 400 invalid_header, 503 read_model_behind. */
export const READS = [400, 503] as const;
/** A write that answers once its read model has it: 503 read_model_behind. */
export const WAITS = [503] as const;

/** The response map of a route: its success answers, and the error statuses of its own rules. */
export function answers(success: Record<number, Schema>, errors: readonly number[] = []): Record<number, Schema> {
  const map: Record<number, Schema> = {};
  for (const [status, schema] of Object.entries(success)) map[Number(status)] = { description: STATUS_CODES[status], ...schema };
  for (const status of errors) map[status] = errorAnswer(status);
  return map;
}

function errorAnswer(status: number): Schema {
  return { description: STATUS_CODES[status], ...ERROR };
}

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

class RouteContractError extends Error {}

/** The statuses a route gives whatever it does, from how it is declared. */
function derivedErrors(route: RouteOptions): number[] {
  const schema = route.schema ?? {};
  const methods = [route.method].flat();
  const statuses = [500];
  if (schema.body || schema.querystring || schema.params || schema.headers) statuses.push(400);
  if (route.config?.access !== 'public') statuses.push(401, 403);
  if (methods.some((m) => BODY_METHODS.has(m))) statuses.push(400, 413, 415); // invalid_json, body_too_large, unsupported_media_type
  if (route.url.includes(':')) statuses.push(414); // path_too_long
  return statuses;
}

export function declareContract(app: FastifyInstance): void {
  app.addHook('onRoute', (route) => {
    const schema = route.schema;
    if (schema?.hide) return;
    const response = schema?.response as Record<string, Schema> | undefined;
    if (!response) throw new RouteContractError(`route ${String(route.method)} ${route.url} declares no response (schema.response, see producers/api/contract.ts)`);
    for (const status of derivedErrors(route)) response[status] ??= errorAnswer(status);
  });
}
