/**
 * Every answer an integration test gets from the API (through `fetch`, which
 * ./contract-fetch.ts wraps for the whole suite) is checked against
 * the API's own OpenAPI document (`GET /docs`): the status must be declared
 * for the operation, the body must match that status's schema (objects the
 * document leaves open are the only ones allowed properties it does not
 * list), and an error's code must be in the error table of docs/api.md. A
 * mismatch fails the calling test, so the document cannot drift from the code.
 */
import { readFileSync } from 'node:fs';
import AjvCompiler from '@fastify/ajv-compiler';
import { ERROR } from '../../producers/api/contract.js';

type Schema = Record<string, unknown>;
interface Response {
  content?: Record<string, { schema: Schema }>;
}
interface Operation {
  method: string;
  template: string;
  pattern: RegExp;
  /** Static segments first, so /v1/keys/{userId}/transparency is not taken for a longer parameter. */
  rank: number[];
  responses: Record<string, Response>;
}
type Validate = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null };

/** Routes the document hides on purpose: probes, metrics and the document itself. */
const HIDDEN = new Set(['/health', '/ready', '/metrics', '/docs']);

const compile = AjvCompiler()({}, { customOptions: { coerceTypes: false, useDefaults: false, removeAdditional: false, allErrors: true, strict: false } }) as unknown as (route: { schema: Schema }) => Validate;

/** Objects the document does not declare open are closed: a property the schema forgot is a mismatch. */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Schema = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Schema).map(([p, s]) => [p, closed(s)])) : closed(v);
  if (out['properties'] && out['additionalProperties'] === undefined) out['additionalProperties'] = false;
  return out;
}

let documentedCodes: Map<string, Set<number>> | undefined;
/** The error table of docs/api.md: each code with the statuses its rows give it (a row: `| status | codes | when |`). */
function errorCodes(): Map<string, Set<number>> {
  if (documentedCodes) return documentedCodes;
  const text = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');
  const section = text.slice(text.indexOf('## Errors'));
  documentedCodes = new Map();
  for (const line of section.split('\n').filter((l) => /^\| \d{3} \|/.test(l))) {
    const [, status, codes] = line.split('|').map((cell) => cell.trim());
    for (const [, code] of (codes ?? '').matchAll(/`([a-z][a-z0-9_]*)`/g)) {
      if (!code) continue;
      const statuses = documentedCodes.get(code) ?? new Set<number>();
      statuses.add(Number(status));
      documentedCodes.set(code, statuses);
    }
  }
  return documentedCodes;
}

class Contract {
  private readonly operations: Operation[] = [];
  private readonly validators = new Map<string, Validate>();

  constructor(document: { paths: Record<string, Record<string, { responses: Record<string, Response> }>> }) {
    for (const [template, methods] of Object.entries(document.paths)) {
      const segments = template.split('/');
      const pattern = new RegExp(`^${segments.map((s) => (s.startsWith('{') ? '[^/]+' : s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))).join('/')}$`);
      const rank = segments.map((s) => (s.startsWith('{') ? 1 : 0));
      for (const [method, operation] of Object.entries(methods)) this.operations.push({ method: method.toUpperCase(), template, pattern, rank, responses: operation.responses });
    }
    this.operations.sort((a, b) => compareRanks(a.rank, b.rank));
  }

  check(method: string, url: string, status: number, contentType: string | null, text: string): void {
    const path = url.split('?')[0] ?? url;
    if (HIDDEN.has(path)) return;
    const operation = this.operations.find((o) => o.method === method.toUpperCase() && o.pattern.test(path));
    const where = `${method} ${operation?.template ?? path} → ${status}`;
    if (!operation) {
      // No such route: fastify's not-found answer, in the error shape.
      if (status !== 404) throw new Error(`contract: ${where}: the OpenAPI document has no such operation`);
      return this.validate(`404 ${where}`, ERROR, JSON.parse(text), where);
    }
    const response = operation.responses[String(status)];
    if (!response) throw new Error(`contract: ${where}: status ${status} is not declared (declared: ${Object.keys(operation.responses).join(', ')})`);
    if (!response.content) {
      if (text !== '') throw new Error(`contract: ${where}: the document declares no body, the answer has one`);
      return;
    }
    const type = (contentType ?? '').split(';')[0]?.trim() ?? '';
    const media = response.content[type];
    if (!media) throw new Error(`contract: ${where}: content-type ${type} is not declared (declared: ${Object.keys(response.content).join(', ')})`);
    const body: unknown = type === 'application/json' ? JSON.parse(text) : text;
    this.validate(`${operation.method} ${operation.template} ${status} ${type}`, media.schema, body, where);
    if (status >= 400) {
      const code = (body as { code?: string }).code ?? '';
      const statuses = errorCodes().get(code);
      if (!statuses) throw new Error(`contract: ${where}: error code ${code} is not in the error table of docs/api.md`);
      if (!statuses.has(status)) throw new Error(`contract: ${where}: the error table of docs/api.md gives ${code} the status ${[...statuses].join(', ')}, not ${status}`);
    }
  }

  private validate(key: string, schema: Schema, body: unknown, where: string): void {
    let validate = this.validators.get(key);
    if (!validate) {
      validate = compile({ schema: closed(schema) as Schema });
      this.validators.set(key, validate);
    }
    if (!validate(body)) {
      const problems = (validate.errors ?? []).map((e) => `${e.instancePath || '(body)'} ${e.message ?? ''}`).join('; ');
      throw new Error(`contract: ${where}: the body does not match the document: ${problems}\n${JSON.stringify(body).slice(0, 2000)}`);
    }
  }
}

function compareRanks(a: number[], b: number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? -1) - (b[i] ?? -1);
    if (d !== 0) return d;
  }
  return 0;
}

/** fetch as Node has it: the contract's own requests must not go through the check (contract-fetch.ts). */
const untrackedFetch = globalThis.fetch;

const contracts = new Map<string, Promise<Contract | undefined>>();

/** The contract of the server at baseUrl, fetched once per origin; undefined when it serves no OpenAPI document (a gateway, a role's ops port). */
function contractOf(baseUrl: string): Promise<Contract | undefined> {
  let contract = contracts.get(baseUrl);
  if (!contract) {
    contract = untrackedFetch(`${baseUrl}/docs`).then(async (res) => {
      const document = res.ok && (res.headers.get('content-type') ?? '').startsWith('application/json') ? ((await res.json()) as { openapi?: string }) : undefined;
      return document?.openapi ? new Contract(document as ConstructorParameters<typeof Contract>[0]) : undefined;
    });
    contracts.set(baseUrl, contract);
  }
  return contract;
}

/** Throws when the answer breaks the API's OpenAPI document. */
export async function checkAnswer(baseUrl: string, method: string, url: string, status: number, contentType: string | null, text: string): Promise<void> {
  const contract = await contractOf(baseUrl);
  if (!contract) throw new Error(`contract: ${baseUrl} serves no OpenAPI document at /docs`);
  contract.check(method, url, status, contentType, text);
}

/**
 * Checks an answer when it comes from a server on this machine that publishes
 * an OpenAPI document (the API); answers of anything else pass unchecked.
 */
export async function checkIfApi(origin: string, method: string, pathAndQuery: string, res: globalThis.Response): Promise<void> {
  const contract = await contractOf(origin);
  if (!contract) return;
  contract.check(method, pathAndQuery, res.status, res.headers.get('content-type'), await res.clone().text());
}
