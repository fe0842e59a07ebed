/**
 * /health: the process is alive. /ready: it can do its job (NATS, Postgres,
 * Redis answer; no projector is stopped). /metrics: Prometheus.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../app.js';

export function healthRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/health', () => ({ status: 'ok' }));
  app.get('/ready', async (_request, reply) => {
    const report = await deps.readiness();
    return reply.status(report.ready ? 200 : 503).send(report);
  });
  app.get('/metrics', async (_request, reply) =>
    reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
