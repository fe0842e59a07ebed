import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { isolated, type Isolated } from '../support/isolated.js';

const spans = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));

describe('HTTP API: register a user and read it back', () => {
  let env: Isolated;
  let api: RunningApi;
  let projectors: RunningProjectors;

  beforeAll(async () => {
    env = await isolated();
    projectors = startProjectors(env.rt);
    api = await startApi(env.rt, { host: '127.0.0.1', readTimeoutMs: 1500, projectorStatus: () => projectors.projectors.map((p) => p.status()) });
  });
  afterAll(async () => {
    await api.close();
    await projectors.close();
    await env.cleanup();
  });

  const post = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${api.url}/v1/users`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const get = (id: string, minSeq?: number | string) =>
    fetch(`${api.url}/v1/users/${id}`, { headers: minSeq === undefined ? {} : { 'x-min-sequence': String(minSeq) } });

  it('POST /v1/users answers 201 with the id and sequence; GET with that sequence sees it', async () => {
    const created = await post({ email: 'Alice@Example.org', displayName: 'Alice' });
    expect(created.status).toBe(201);
    const body = (await created.json()) as { id: string; sequence: number };
    expect(body.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(body.sequence).toBeGreaterThan(0);
    const read = await get(body.id, body.sequence);
    expect(read.status).toBe(200);
    expect(await read.json()).toMatchObject({ id: body.id, email: 'alice@example.org', displayName: 'Alice', status: 'active', sequence: body.sequence });
  });

  it('a duplicate email is 409 email_taken and appends nothing to the user', async () => {
    const first = await post({ email: 'bob@example.org' });
    expect(first.status).toBe(201);
    const before = (await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'))).state.messages;
    const again = await post({ email: 'BOB@example.org' });
    expect(again.status).toBe(409);
    expect(await again.json()).toMatchObject({ code: 'email_taken' });
    expect((await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'))).state.messages).toBe(before);
  });

  it('concurrent registrations of one email: exactly one 201', async () => {
    const statuses = await Promise.all(Array.from({ length: 6 }, () => post({ email: 'race@example.org' }).then((r) => r.status)));
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(5);
  });

  it.each([
    [{}, 'email', /email: must have required property 'email'/],
    [{ email: 'not-an-email' }, 'email', /email: must match format "email"/],
    [{ email: 'c@example.org', displayName: '' }, 'displayName', /displayName/],
    [{ email: 'c@example.org', admin: true }, 'admin', /admin: is not a known field/],
  ])('a malformed body %j is 400 naming the field', async (body, field, message) => {
    const before = (await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'))).state.messages;
    const res = await post(body);
    expect(res.status).toBe(400);
    const error = (await res.json()) as { code: string; field: string; message: string };
    expect(error).toMatchObject({ code: 'invalid_body', field });
    expect(error.message).toMatch(message);
    expect((await env.rt.nats.jsm.streams.info(env.rt.names.stream('identity'))).state.messages).toBe(before);
  });

  it('a body that is not JSON is 400 with a stable code', async () => {
    const res = await fetch(`${api.url}/v1/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBeTruthy();
  });

  it('reads: unknown user 404, malformed id 400, bad or unreachable min sequence 400/503', async () => {
    expect((await get('0190a4b0-0000-7000-8000-000000000000')).status).toBe(404);
    const bad = await get('nope');
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ code: 'invalid_params', field: 'id' });
    const badHeader = await get('0190a4b0-0000-7000-8000-000000000000', 'soon');
    expect(await badHeader.json()).toMatchObject({ code: 'invalid_header', field: 'x-min-sequence' });
    const behind = await get('0190a4b0-0000-7000-8000-000000000000', 10_000_000);
    expect(behind.status).toBe(503);
    expect(await behind.json()).toMatchObject({ code: 'read_model_behind' });
  });

  it('/health, /ready and /metrics', async () => {
    expect((await fetch(`${api.url}/health`)).status).toBe(200);
    const ready = await fetch(`${api.url}/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { nats: { ok: true }, postgres: { ok: true }, redis: { ok: true }, 'projector:users': { ok: true } } });
    const metrics = await (await fetch(`${api.url}/metrics`)).text();
    expect(metrics).toMatch(/relaygrid_projector_lag_events\{projector="users"\} \d+/);
    expect(metrics).toMatch(/relaygrid_projector_checkpoint_sequence\{projector="users"\} [1-9]/);
    expect(metrics).toMatch(/relaygrid_appends_total\{outcome="appended"\} [1-9]/);
    expect(metrics).toMatch(/relaygrid_appends_total\{outcome="rejected"\} [1-9]/);
    expect(metrics).toMatch(/relaygrid_http_request_seconds_count\{method="POST",route="\/v1\/users",status="201"\}/);
  });

  it('traceparent flows from the request into the event headers and the projector span', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await post({ email: 'traced@example.org' }, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    const { sequence } = (await res.json()) as { sequence: number };
    const msg = await env.rt.nats.jsm.direct.getMessage(env.rt.names.stream('identity'), { seq: sequence });
    const traceparent = msg?.header.get('traceparent') ?? '';
    expect(traceparent.split('-')[1]).toBe(traceId);
    expect((await get('0190a4b0-0000-7000-8000-000000000000', sequence)).status).toBe(404);
    const apiSpan = spans.getFinishedSpans().find((s) => s.name === 'POST /v1/users' && s.spanContext().traceId === traceId);
    const projectorSpan = spans.getFinishedSpans().find((s) => s.name === 'project users' && s.spanContext().traceId === traceId);
    expect(apiSpan?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(projectorSpan?.parentSpanContext?.spanId).toBe(apiSpan?.spanContext().spanId);
    expect(traceparent.split('-')[2]).toBe(apiSpan?.spanContext().spanId);
  });
});
