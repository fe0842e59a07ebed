/**
 * `/health`, `/ready` and `/metrics` for a role that has no HTTP port of its
 * own (projectors, the fleet worker, the audit worker), so that each of them,
 * run alone, can be probed and scraped like the API and the gateway.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { ReadinessReport } from './readiness.js';

export interface OpsServerOptions {
  /** What `/health` names: the command that runs here (`projector`, `fleet-worker`, …). */
  role: string;
  port: number;
  host?: string;
  /** Any registry: the agent serves its edge's metrics (workers/agent/edge/edge-metrics.ts). */
  metrics: Pick<Metrics, 'registry'>;
  readiness: () => Promise<ReadinessReport>;
  log: Logger;
}

export interface RunningOpsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

async function answer(opts: OpsServerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    return json(res, 405, { code: 'method_not_allowed', message: 'GET /health, /ready or /metrics' });
  }
  switch (new URL(req.url ?? '/', 'http://ops').pathname) {
    case '/health':
      return json(res, 200, { status: 'ok', role: opts.role });
    case '/ready': {
      const report = await opts.readiness();
      return json(res, report.ready ? 200 : 503, report);
    }
    case '/metrics': {
      const text = await opts.metrics.registry.metrics();
      res.writeHead(200, { 'content-type': opts.metrics.registry.contentType }).end(text);
      return;
    }
    default:
      return json(res, 404, { code: 'not_found', message: 'this port serves GET /health, /ready and /metrics' });
  }
}

export async function startOpsServer(opts: OpsServerOptions): Promise<RunningOpsServer> {
  const server = createServer((req, res) => {
    answer(opts, req, res).catch((err: unknown) => {
      opts.log.error({ err, path: req.url }, 'ops endpoint failed');
      if (!res.headersSent) json(res, 500, { code: 'internal', message: 'internal error' });
      else res.destroy();
    });
  });
  const host = opts.host ?? '0.0.0.0';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections of a scraper must not hold the shutdown up.
        server.closeAllConnections();
      }),
  };
}
