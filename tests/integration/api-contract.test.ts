import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { uuidv7 } from '../../contracts/ids.js';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { client } from '../support/http.js';
import { isolated, type Isolated } from '../support/isolated.js';

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; required?: string[]; items?: Schema; enum?: unknown[]; pattern?: string; format?: string; minLength?: number; minItems?: number; minimum?: number; exclusiveMinimum?: number };
type Operation = { requestBody?: { content: Record<string, { schema: Schema }> }; parameters?: { in: string; name: string; schema: Schema }[]; responses: Record<string, { content?: Record<string, { schema: Schema }> }> };
type Document = { paths: Record<string, Record<string, Operation>> };

/** A value each pattern in the API's schemas accepts; a new pattern needs a sample here. */
const SAMPLES: Record<string, string> = {
  '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$': '0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b',
  '^[a-z0-9][a-z0-9-]{0,62}$': 'n1',
  '^[a-z0-9][a-z0-9_-]{0,62}$': 'p1',
  '^[0-9]{6}$': '123456',
  '^[A-Za-z0-9_-]{1,128}$': 'plan-1',
  '^[A-Za-z0-9_-]{1,64}$': 'grant-1',
  '^(0|[1-9][0-9]{0,18})$': '1048576',
  '^[A-Za-z0-9-]{3,32}$': 'SPRING-20',
  '^[A-Z]{2}$': 'DE',
  '^ord_[0-9a-f]{32}$': `ord_${'0'.repeat(32)}`,
  '^inv_[0-9a-f]{32}$': `inv_${'0'.repeat(32)}`,
  '^\\d{4}-\\d{2}-\\d{2}$': '2026-01-01',
};

/** A value the schema accepts (the other fields of a body, so the refusal is about the one field under test). */
function valid(schema: Schema): unknown {
  if (schema.enum) return schema.enum[0];
  switch (schema.type) {
    case 'string':
      if (schema.pattern) return SAMPLES[schema.pattern] ?? expect.fail(`no sample for pattern ${schema.pattern}`);
      if (schema.format === 'email') return 'someone@example.org';
      if (schema.format === 'date-time') return '2026-01-01T00:00:00Z';
      return 'x'.repeat(Math.max(schema.minLength ?? 1, 1));
    case 'integer':
      return schema.minimum ?? 1;
    case 'number':
      return schema.exclusiveMinimum !== undefined ? schema.exclusiveMinimum + 0.5 : (schema.minimum ?? 1);
    case 'boolean':
      return true;
    case 'array':
      return Array.from({ length: schema.minItems ?? 0 }, (_, i) => (schema.items?.type === 'integer' ? i : valid(schema.items ?? {})));
    case 'object':
      return Object.fromEntries((schema.required ?? []).map((k) => [k, valid(schema.properties?.[k] ?? {})]));
    default:
      return expect.fail(`no sample for ${JSON.stringify(schema)}`);
  }
}

/** A value of the wrong JSON type that the old coercing validator turned into the right one. */
function wrongType(schema: Schema): unknown {
  switch (schema.type) {
    case 'string':
      return schema.enum || schema.pattern ? [valid(schema)] : 12345678901;
    case 'integer':
    case 'number':
      return String(valid(schema));
    case 'boolean':
      return 'true';
    case 'array':
      return schema.items ? valid(schema.items) : 'x';
    default:
      return 'x';
  }
}

/** Every field of a body schema, nested ones by their dotted path (array items as `.0`). */
function* fields(schema: Schema, path: string[] = []): Generator<{ path: string[]; schema: Schema }> {
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    yield { path: [...path, name], schema: property };
    if (property.type === 'object') yield* fields(property, [...path, name]);
    if (property.type === 'array' && property.items?.type === 'object') yield* fields(property.items, [...path, name, '0']);
  }
}

/** A body with every field present and valid, one item in lists of objects, so each field can be replaced in place. */
function full(schema: Schema): unknown {
  if (schema.type === 'object') return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, p]) => [k, full(p)]));
  if (schema.type === 'array' && schema.items?.type === 'object') return [full(schema.items)];
  return valid(schema);
}

function withField(body: unknown, path: string[], value: unknown): unknown {
  const copy = structuredClone(body) as Record<string, unknown>;
  const parent = path.slice(0, -1).reduce<Record<string, unknown>>((at, key) => at[key] as Record<string, unknown>, copy);
  parent[path.at(-1) ?? ''] = value;
  return copy;
}

describe('HTTP API: the OpenAPI document is the contract', () => {
  let env: Isolated;
  let api: RunningApi;
  let document: Document;
  let admin: string;
  let call: ReturnType<typeof client>;

  beforeAll(async () => {
    env = await isolated();
    api = await startApi(env.rt, { host: '127.0.0.1' });
    call = client(api.url);
    document = (await (await fetch(`${api.url}/docs`)).json()) as Document;
    // Validation runs before any handler: the caller needs a role that passes every door, not an account.
    admin = api.identity.deps.tokens.issue(uuidv7(), uuidv7(), ['admin', 'client', 'operator']);
  });
  afterAll(async () => {
    await api?.close();
    await env?.cleanup();
  });

  const operations = () => Object.entries(document.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method: method.toUpperCase(), op })));

  it('every operation declares its success with a schema and each error status with the error schema', () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThanOrEqual(74);
    for (const { path, method, op } of ops) {
      const statuses = Object.keys(op.responses);
      const success = statuses.filter((s) => s.startsWith('2'));
      expect(success, `${method} ${path}`).toHaveLength(1);
      const answer = op.responses[success[0] ?? ''];
      if (success[0] !== '204') expect(answer?.content, `${method} ${path} ${success[0]}`).toBeDefined();
      for (const status of statuses.filter((s) => Number(s) >= 400)) {
        expect(op.responses[status]?.content?.['application/json']?.schema, `${method} ${path} ${status}`).toMatchObject({ required: ['code', 'message'] });
      }
      expect(statuses, `${method} ${path}`).toContain('500');
      if (op.parameters?.some((p) => p.in === 'path')) expect(statuses, `${method} ${path}`).toContain('414');
      if (op.requestBody) expect(statuses, `${method} ${path}`).toEqual(expect.arrayContaining(['400', '413', '415']));
    }
  });

  it('a wrong JSON type in any field of any body is 400 invalid_body naming the field, never converted', async () => {
    let cases = 0;
    for (const { path, method, op } of operations()) {
      const schema = op.requestBody?.content['application/json']?.schema;
      if (!schema) continue;
      const url = path.replace(/\{(\w+)\}/g, (_, name: string) => String(valid(op.parameters?.find((p) => p.in === 'path' && p.name === name)?.schema ?? {})));
      const base = full(schema);
      for (const field of fields(schema)) {
        const body = withField(base, field.path, wrongType(field.schema));
        const res = await call(method, url, { token: admin, body });
        expect(res.status, `${method} ${path} ${JSON.stringify(body)}: ${JSON.stringify(res.body)}`).toBe(400);
        expect(res.body, `${method} ${path} ${field.path.join('.')}`).toMatchObject({ code: 'invalid_body', field: field.path.join('.') });
        cases++;
      }
    }
    expect(cases).toBeGreaterThan(60);
  });

  it('a raw fetch is held to the document too: an answer the document does not declare fails the fetch', async () => {
    // A server that publishes a document and then answers against it: what a drifting route would do.
    const error = { description: 'Conflict', content: { 'application/json': { schema: { type: 'object', properties: { code: { type: 'string' }, message: { type: 'string' } } } } } };
    const document = {
      openapi: '3.0.3',
      paths: {
        '/x': { get: { responses: { '200': { description: 'OK', content: { 'application/json': { schema: { type: 'object', properties: { a: { type: 'string' } } } } } } } } },
        '/z': { get: { responses: { '409': error } } },
      },
    };
    const server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/z') res.statusCode = 409;
      res.end(JSON.stringify(req.url === '/docs' ? document : req.url === '/x' ? { a: 1 } : req.url === '/z' ? { code: 'invalid_json', message: 'a 400 code under 409' } : { nope: true }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      await expect(fetch(`${origin}/x`)).rejects.toThrow(/contract: GET \/x → 200: the body does not match the document: \/a must be string/);
      await expect(fetch(`${origin}/y`)).rejects.toThrow(/contract: GET \/y → 200: the OpenAPI document has no such operation/);
      // A documented code under a status its row does not give it.
      await expect(fetch(`${origin}/z`)).rejects.toThrow(/contract: GET \/z → 409: the error table of docs\/api.md gives invalid_json the status 400, not 409/);
    } finally {
      server.close();
    }
  });

  it('query strings and path parameters still parse numbers from text', async () => {
    const res = await call('GET', '/v1/admin/users?limit=1', { token: admin });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ users: [], next: null });
  });

  describe("fastify's and Node's own refusals answer {code, message} with a documented code", () => {
    const raw = async (path: string, init: RequestInit = {}) => {
      // The suite's fetch holds it to the document like every answer: status declared, error shape, code in docs/api.md.
      const res = await fetch(`${api.url}${path}`, init);
      const text = await res.text();
      return { status: res.status, body: JSON.parse(text) as Record<string, unknown> };
    };
    const json = (body: string, contentType = 'application/json') => ({ method: 'POST', headers: { 'content-type': contentType }, body });

    it.each([
      ['a path parameter over 100 characters', `/v1/sub/${'t'.repeat(200)}`, {}, 414, 'path_too_long'],
      ['a body over 64 KiB', '/v1/auth/login', json(JSON.stringify({ email: 'a@example.org', password: 'x'.repeat(70_000) })), 413, 'body_too_large'],
      ['a body that is not JSON', '/v1/auth/login', json('{"email":'), 400, 'invalid_json'],
      ['an empty JSON body', '/v1/auth/login', json(''), 400, 'invalid_json'],
      ['an unsupported content type', '/v1/auth/login', json('<login/>', 'application/xml'), 415, 'unsupported_media_type'],
      ['a bad escape in the path', '/v1/sub/%E0%A4%A', {}, 400, 'invalid_url'],
      ['no such route', '/v1/nothing-here', {}, 404, 'not_found'],
    ])('%s', async (_what, path, init, status, code) => {
      const res = await raw(path, init);
      expect(res.status).toBe(status);
      expect(Object.keys(res.body).sort()).toEqual(['code', 'message']);
      expect(res.body['code']).toBe(code);
    });

    it('a request that is not HTTP', async () => {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(new URL(api.url).port ? Number(new URL(api.url).port) : 80, new URL(api.url).hostname);
        let text = '';
        socket.on('data', (chunk) => (text += chunk.toString()));
        socket.on('end', () => resolve(text));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
        socket.write('NOT HTTP AT ALL\r\n\r\n');
      });
      expect(answer).toMatch(/^HTTP\/1\.1 400 /);
      const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
      expect(Object.keys(body).sort()).toEqual(['code', 'message']);
      expect(body['code']).toBe('bad_request');
    });
  });
});
