/**
 * /health: the process is alive. /ready: it can do its job (the process's
 * readiness, infra/readiness.ts). /metrics: Prometheus.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiDeps } from '../app.js';

export function healthRoutes(app: FastifyInstance, deps: ApiDeps): void {
  app.get('/health', { config: { access: 'public' }, schema: { hide: true } }, () => ({ status: 'ok' }));
  app.get('/ready', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) => {
    const report = await deps.readiness();
    return reply.status(report.ready ? 200 : 503).send(report);
  });
  app.get('/metrics', { config: { access: 'public' }, schema: { hide: true } }, async (_request, reply) =>
    reply.header('content-type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics()),
  );
}
