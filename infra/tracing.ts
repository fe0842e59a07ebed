/**
 * W3C trace context in and out of events. The propagator is used directly
 * rather than through the global API so that `traceparent` flows even when no
 * OpenTelemetry SDK is installed (spans are then non-recording, ids still pass).
 */
import { context, trace, ROOT_CONTEXT, type Context, type Span } from '@opentelemetry/api';
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
export async function inSpan<T>(name: string, parent: Context, fn: (span: Span, ctx: Context) => Promise<T>): Promise<T> {
  const span = tracer().startSpan(name, {}, parent);
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
