/**
 * Exporting spans. With OTEL_EXPORTER_OTLP_ENDPOINT set, a process registers
 * the OpenTelemetry Node SDK with a batching OTLP/HTTP exporter (JSON to
 * `<endpoint>/v1/traces`; the exporter reads the standard OTEL_EXPORTER_OTLP_*
 * variables itself) and names itself `relaygrid-<role>` unless OTEL_SERVICE_NAME
 * says otherwise. Without it nothing is registered: spans stay non-recording
 * and only the trace ids flow (infra/tracing.ts).
 */
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Logger } from './logger.js';

export interface Telemetry {
  /** Sends what is buffered and stops; a process calls it once, on its way out. */
  shutdown(): Promise<void>;
}

/** One provider per process: the first runtime registers it, later ones (a CLI command's second runtime) share it. */
let registered: { provider: NodeTracerProvider; users: number } | undefined;

export function startTelemetry(role: string, log: Logger, env: NodeJS.ProcessEnv = process.env): Telemetry | undefined {
  const endpoint = env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] ?? env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  if (!endpoint) return undefined;
  if (!registered) {
    const provider = new NodeTracerProvider({
      resource: resourceFromAttributes({ 'service.name': env['OTEL_SERVICE_NAME'] ?? `relaygrid-${role}`, 'service.namespace': 'relaygrid' }),
      // Short delays: a role's spans reach the collector within a second, and little is lost to a kill.
      spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: 500 })],
    });
    provider.register();
    registered = { provider, users: 0 };
    log.info({ endpoint: endpoint.replace(/\/\/[^@/]*@/, '//…@') }, 'exporting traces over OTLP/HTTP');
  }
  const current = registered;
  current.users += 1;
  return {
    shutdown: async () => {
      current.users -= 1;
      if (current.users > 0) return;
      if (registered === current) registered = undefined;
      await current.provider.shutdown().catch((err: unknown) => log.warn({ err }, 'traces could not be flushed'));
    },
  };
}
