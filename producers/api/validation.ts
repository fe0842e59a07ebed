/**
 * Request validation: JSON bodies are checked as sent (a number where a
 * string belongs is 400 invalid_body, never converted), while the query
 * string and path parameters, which are text by nature, may still be parsed
 * into the numbers and booleans their schemas ask for.
 */
import AjvCompiler from '@fastify/ajv-compiler';

/** What fastify hands a validator compiler (its typings say a bare schema, the code passes this). */
interface RouteDefinition {
  schema: object;
  httpPart?: string;
}

const selector = AjvCompiler();

/** fastify's own Ajv compilers (one pool): one instance that coerces, one that does not. */
export const buildValidator: AjvCompiler.BuildCompilerFromPool = (externalSchemas, options) => {
  // We never use JTD mode (its options take no coerceTypes).
  const base = (options ?? {}) as { customOptions?: AjvCompiler.Options };
  const coercing = selector(externalSchemas, { ...base, customOptions: { ...base.customOptions, coerceTypes: 'array' } });
  const strict = selector(externalSchemas, { ...base, customOptions: { ...base.customOptions, coerceTypes: false } });
  return (route) => ((route as unknown as RouteDefinition).httpPart === 'body' ? strict(route) : coercing(route));
};
