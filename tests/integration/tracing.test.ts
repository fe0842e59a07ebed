/**
 * Traces over OTLP/HTTP. The API, the projectors and the audit worker run as
 * three processes with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a receiver this
 * test runs; one registration is followed in one trace from the HTTP request
 * through the append (`send <subject>`) to the projector's batch and the
 * audit worker's, each a process of its own.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../infra/stack/ports.js';
import { generateKeyPair } from '../../replay/audit/note.js';
import { client } from '../support/http.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';
import { RoleProcesses } from '../support/role-processes.js';

/** A span as OTLP/JSON carries it (ids in hex), with the service that sent it. */
interface ReceivedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  links: { traceId: string; spanId: string }[];
  attributes: Record<string, unknown>;
}

interface OtlpJson {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: Record<string, unknown> }[] };
    scopeSpans?: { spans?: (Omit<ReceivedSpan, 'service' | 'attributes' | 'links'> & { attributes?: { key: string; value: Record<string, unknown> }[]; links?: { traceId: string; spanId: string }[] })[] }[];
  }[];
}

const valueOf = (v: Record<string, unknown>): unknown => Object.values(v)[0];

/** A minimal OTLP/HTTP JSON receiver: POST /v1/traces, answered 200 with an empty partial-success body. */
function otlpReceiver(spans: ReceivedSpan[]): Server {
  return createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces' || !String(req.headers['content-type']).startsWith('application/json')) {
        res.writeHead(415).end();
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpJson;
      for (const rs of body.resourceSpans ?? []) {
        const service = String(valueOf(rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value ?? {}));
        for (const ss of rs.scopeSpans ?? [])
          for (const s of ss.spans ?? [])
            spans.push({ ...s, service, links: s.links ?? [], attributes: Object.fromEntries((s.attributes ?? []).map((a) => [a.key, valueOf(a.value)])) });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
}

describe('traces over OTLP/HTTP across processes', () => {
  let env: Isolated;
  let receiver: Server;
  let processes: RoleProcesses;
  let checkpointDir: string;
  const spans: ReceivedSpan[] = [];

  beforeAll(async () => {
    env = await isolated();
    receiver = otlpReceiver(spans);
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const otlp = { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}` };
    checkpointDir = mkdtempSync(join(tmpdir(), 'rg-trace-audit-'));
    processes = new RoleProcesses(env.config);
    const [api, projector, audit] = await Promise.all([freePort(), freePort(), freePort()]);
    processes.spawn('api', 'RG_API_PORT', api, otlp);
    processes.spawn('projector', 'RG_PROJECTOR_PORT', projector, otlp);
    processes.spawn('audit-worker', 'RG_AUDIT_WORKER_PORT', audit, { ...otlp, RG_AUDIT_SIGNING_KEY: generateKeyPair(`relaygrid.test/${env.namespace}`).signer, RG_AUDIT_CHECKPOINT_DIR: checkpointDir });
    await processes.ready();
  }, 60_000);

  afterAll(async () => {
    await processes?.stop();
    await new Promise((resolve) => receiver?.close(resolve));
    if (checkpointDir) rmSync(checkpointDir, { recursive: true, force: true });
    await env?.cleanup();
  });

  it('one registration: HTTP request → append → projector batch and audit batch, one trace over three services', async () => {
    const call = client(processes.role('api').url);
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const registered = await call('POST', '/v1/auth/register', {
      body: { email: 'traced@example.org', password: 'correct horse battery staple' },
      headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    expect(registered.status).toBe(201);

    const inTrace = () => spans.filter((s) => s.traceId === traceId);
    const request = await eventually(() => inTrace().find((s) => s.name === 'POST /v1/auth/register'), 15_000);
    expect(request.service).toBe('relaygrid-api');
    // The caller's span is the request's parent: the trace is the caller's.
    expect(request.parentSpanId).toBe('00f067aa0ba902b7');

    const sends = inTrace().filter((s) => s.name.startsWith('send ') && s.parentSpanId === request.spanId);
    const userAppend = sends.find((s) => s.name.includes('.identity.user.'));
    expect(userAppend?.attributes['messaging.destination.name']).toMatch(/\.identity\.user\./);

    // The users projector (another process) applied the event in a span under that append, linked to its batch span.
    const projected = await eventually(() => inTrace().find((s) => s.service === 'relaygrid-projector' && s.name === 'process users' && s.parentSpanId === userAppend?.spanId), 15_000);
    const batch = spans.find((s) => s.spanId === projected.links[0]?.spanId);
    expect(batch?.name).toBe('process users');
    expect(batch?.links.some((l) => l.traceId === traceId && l.spanId === userAppend?.spanId)).toBe(true);

    // And the audit worker (a third process) folded it into the tree, in the same trace.
    const audited = await eventually(() => inTrace().find((s) => s.service === 'relaygrid-audit' && s.name === 'process audit' && s.parentSpanId === userAppend?.spanId), 20_000);
    expect(audited.attributes['messaging.message.id']).toBeTruthy();
  }, 60_000);
});
