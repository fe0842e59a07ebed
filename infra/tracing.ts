/**
 * W3C trace context in and out of events. The propagator is used directly
 * rather than through the global API so that `traceparent` flows even when no
 * OpenTelemetry SDK is installed (spans are then non-recording, ids still pass).
 */
import { context, trace, ROOT_CONTEXT, SpanKind, SpanStatusCode, type Attributes, type Context, type Span, type SpanOptions } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';

const propagator = new W3CTraceContextPropagator();
const getter = {
  keys: (carrier: Record<string, string>) => Object.keys(carrier),
  get: (carrier: Record<string, string>, key: string) => carrier[key],
};
const setter = {
  set: (carrier: Record<string, string>, key: string, value: string) => {
    carrier[key] = value;
  },
};

export const tracer = () => trace.getTracer('relaygrid');

export function contextFromTraceparent(traceparent: string | undefined, parent: Context = ROOT_CONTEXT): Context {
  if (!traceparent) return parent;
  return propagator.extract(parent, { traceparent }, getter);
}

export function traceparentOf(ctx: Context): string | undefined {
  const carrier: Record<string, string> = {};
  propagator.inject(ctx, carrier, setter);
  return carrier['traceparent'];
}

/** Runs `fn` in a span that is a child of `parent`, ending it (with the error, if any) afterwards. */
export async function inSpan<T>(name: string, parent: Context, fn: (span: Span, ctx: Context) => Promise<T>, options: SpanOptions = {}): Promise<T> {
  const span = tracer().startSpan(name, options, parent);
  const ctx = trace.setSpan(parent, span);
  try {
    return await context.with(ctx, () => fn(span, ctx));
  } catch (err) {
    span.recordException(err as Error);
    span.setStatus({ code: 2, message: (err as Error).message });
    throw err;
  } finally {
    span.end();
  }
}

/** One message of a batch: the trace context it was created in, and what names it. */
export interface TracedMessage {
  traceparent: string | undefined;
  attributes: Attributes;
}

/**
 * The messaging conventions' batch rule: one `process` span for the batch,
 * linked to the context that created each of its messages, and, so that each
 * producer's trace shows where its event went, one child span per traced
 * message in that message's own trace, linked back to the batch.
 */
export async function inBatchSpans<T>(name: string, attributes: Attributes, messages: readonly TracedMessage[], fn: () => Promise<T>): Promise<T> {
  const traced = messages.flatMap((m) => {
    const ctx = contextFromTraceparent(m.traceparent);
    const spanContext = trace.getSpanContext(ctx);
    return spanContext ? [{ ctx, spanContext, attributes: m.attributes }] : [];
  });
  const batch = tracer().startSpan(name, {
    kind: SpanKind.CONSUMER,
    attributes: { ...attributes, 'messaging.operation.type': 'process', 'messaging.batch.message_count': messages.length },
    links: traced.map((t) => ({ context: t.spanContext })),
  });
  const link = [{ context: batch.spanContext() }];
  const spans = [batch, ...traced.map((t) => tracer().startSpan(name, { kind: SpanKind.CONSUMER, attributes: { ...attributes, ...t.attributes }, links: link }, t.ctx))];
  try {
    return await fn();
  } catch (err) {
    for (const span of spans) span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
    throw err;
  } finally {
    for (const span of spans) span.end();
  }
}
