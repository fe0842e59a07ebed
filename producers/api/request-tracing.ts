/**
 * One span per request, a child of the caller's `traceparent`, so the events a
 * request appends (and the projector spans that apply them) hang under it.
 */
import type { Span } from '@opentelemetry/api';
import { trace } from '@opentelemetry/api';
import type { FastifyInstance } from 'fastify';
import { contextFromTraceparent, traceparentOf, tracer } from '../../infra/tracing.js';

declare module 'fastify' {
  interface FastifyRequest {
    span: Span | null;
    /** The request span's trace context, for the events it appends. */
    traceparent: string | undefined;
  }
}

const UNTRACED = new Set(['/health', '/ready', '/metrics']);

export function requestTracing(app: FastifyInstance): void {
  app.decorateRequest('span', null);
  app.decorateRequest('traceparent', undefined);
  app.addHook('onRequest', (request, _reply, done) => {
    // Probes poll every few seconds: a span each would bury the traces worth reading.
    if (UNTRACED.has(request.routeOptions.url ?? '')) return done();
    const incoming = request.headers.traceparent;
    const parent = contextFromTraceparent(typeof incoming === 'string' ? incoming : undefined);
    const span = tracer().startSpan(`${request.method} ${request.routeOptions.url ?? 'unmatched'}`, {}, parent);
    request.span = span;
    request.traceparent = traceparentOf(trace.setSpan(parent, span));
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    if (reply.statusCode >= 500) request.span?.setStatus({ code: 2 });
    request.span?.end();
    done();
  });
}
