import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';

const spans = new InMemorySpanExporter();
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] }));

describe('HTTP API: conventions every route shares', () => {
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
    fetch(`${api.url}/v1/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  const PASSWORD = 'a long enough password';

  it('concurrent registrations of one email: exactly one 201', async () => {
    const statuses = await Promise.all(Array.from({ length: 6 }, () => post({ email: 'race@example.org', password: PASSWORD }).then((r) => r.status)));
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(5);
  });

  it('a body that is not JSON is 400 with a stable code', async () => {
    const res = await fetch(`${api.url}/v1/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"email":' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { code: string }).code).toBeTruthy();
  });

  it('reads: a bad or unreachable min sequence is 400/503', async () => {
    const created = (await (await post({ email: 'reader@example.org', password: PASSWORD })).json()) as { id: string };
    const login = await fetch(`${api.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'reader@example.org', password: PASSWORD }) });
    const { accessToken } = (await login.json()) as { accessToken: string };
    const get = (minSeq: string) => fetch(`${api.url}/v1/users/${created.id}`, { headers: { authorization: `Bearer ${accessToken}`, 'x-min-sequence': minSeq } });
    expect(await (await get('soon')).json()).toMatchObject({ code: 'invalid_header', field: 'x-min-sequence' });
    const behind = await get('10000000');
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
    expect(metrics).toMatch(/relaygrid_http_request_seconds_count\{method="POST",route="\/v1\/auth\/register",status="201"\}/);
  });

  it('traceparent flows from the request into the event headers and the projector span', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const res = await post({ email: 'traced@example.org', password: PASSWORD }, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    const { sequence } = (await res.json()) as { sequence: number };
    const msg = await env.rt.nats.jsm.direct.getMessage(env.rt.names.stream('identity'), { seq: sequence });
    const traceparent = msg?.header.get('traceparent') ?? '';
    expect(traceparent.split('-')[1]).toBe(traceId);
    const inTrace = () => spans.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    await eventually(() => inTrace().some((s) => s.name === 'process users' && s.parentSpanContext !== undefined));
    const apiSpan = inTrace().find((s) => s.name === 'POST /v1/auth/register');
    // The event carries the context of its append's span, a child of the request's.
    const sendSpan = inTrace().find((s) => s.spanContext().spanId === traceparent.split('-')[2]);
    const projectorSpan = inTrace().find((s) => s.name === 'process users' && s.parentSpanContext?.spanId === sendSpan?.spanContext().spanId);
    expect(apiSpan?.parentSpanContext?.spanId).toBe('00f067aa0ba902b7');
    expect(sendSpan?.name).toMatch(/^send .*\.identity\.user\./);
    expect(sendSpan?.parentSpanContext?.spanId).toBe(apiSpan?.spanContext().spanId);
    expect(projectorSpan).toBeDefined();
  });
});
