/** The HTTP API (fastify): routes, validation, the error format and request metrics. */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Kysely } from 'kysely';
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import type { ReadinessReport } from '../../infra/readiness.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import type { Database } from '../../schema/database.js';
import type { CommandHandler } from '../event-store/command-handler.js';
import { errorHandler } from './errors.js';
import { healthRoutes } from './routes/health.js';
import { userRoutes } from './routes/users.js';

export interface ApiDeps {
  handler: CommandHandler;
  db: Kysely<Database>;
  watcher: CheckpointWatcher;
  metrics: Metrics;
  log: Logger;
  readiness: () => Promise<ReadinessReport>;
  /** How long a read waits for `x-min-sequence` before answering 503. */
  readTimeoutMs?: number;
}

export function buildApi(deps: ApiDeps): FastifyInstance {
  const logger: FastifyBaseLogger = deps.log;
  const app = Fastify({
    loggerInstance: logger,
    // Request metrics cover what per-request log lines would; errors are still logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    ajv: { customOptions: { allErrors: false, removeAdditional: false } },
  });
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ code: 'not_found', message: `no route ${request.method} ${request.url}` });
  });
  app.addHook('onResponse', (request, reply, done) => {
    deps.metrics.httpDuration.observe(
      { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });
  healthRoutes(app, deps);
  userRoutes(app, deps);
  return app;
}
