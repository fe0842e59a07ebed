/**
 * `relaygrid agent`: the node agent as a process (workers/agent/agent.ts).
 *
 *   relaygrid agent --node fra-1 --state-dir /var/lib/relaygrid-agent \
 *     --enroll <token> --api https://api.example.net     # first start only
 *
 * The first start redeems the enrollment token for this node's NATS
 * credentials and keeps them in <state-dir>/credentials.json (mode 0600);
 * later starts use them. NATS_URL says where NATS is (without credentials).
 *
 * `--edge nginx` makes it an edge node's agent too: it runs nginx serving the
 * fleet's sites for this node (workers/agent/edge/edge-driver.ts).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '@nats-io/transport-node';
import type { Config } from '../config.js';
import { createLogger } from '../logger.js';
import { Names } from '../naming.js';
import { CliError } from '../cli/cli-error.js';
import { NodeAgent } from '../../workers/agent/agent.js';
import { ProcessCoreDriver } from '../../workers/agent/core/process-driver.js';
import { edgeDriverOf, type EdgeDriver } from '../../workers/agent/edge/edge-driver.js';
import type { Logger } from '../logger.js';
import { untilSignal } from './serve.js';
import { startOpsServer, type RunningOpsServer } from '../ops-server.js';
import { EdgeMetrics } from '../../workers/agent/edge/edge-metrics.js';

export const AGENT_USAGE = `usage: relaygrid agent --node ID --state-dir DIR [options]

  --enroll TOKEN --api URL   first start: redeem the enrollment token at the API
  --core v2ray|xray          the proxy core (default xray)
  --core-binary PATH         its binary (default: the flavour's name on PATH)
  --api-port N               the core's local API port on 127.0.0.1 (default 10085)
  --sync-interval S          seconds between syncs with the fleet (default 30)
  --usage-interval S         seconds between usage ticks (default 10)
  --edge nginx               an edge node: serve the fleet's sites for this node with nginx
  --edge-http-port N         its HTTP port (default 80)
  --edge-https-port N        its HTTPS port (default 443)
  --edge-address IP          the address it listens on (default 0.0.0.0)
  --edge-root DIR            its state directory (default <state-dir>/edge)
  --edge-metrics-port N      serve the edge's per-site metrics at http://<edge-metrics-address>:N/metrics
  --edge-metrics-address IP  the address of that port (default 127.0.0.1)`;

class AgentArgumentError extends CliError {}

interface Credentials {
  nodeId: string;
  user: string;
  password: string;
  inboxPrefix: string;
}

async function enroll(api: string, token: string): Promise<Credentials> {
  const response = await fetch(new URL('/v1/fleet/enroll', api), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  const body = (await response.json()) as { nodeId: string; nats: { user: string; password: string; inboxPrefix: string }; message?: string };
  if (!response.ok) throw new AgentArgumentError(`--enroll: the API refused the token (${response.status}): ${body.message ?? 'no reason given'}`);
  return { nodeId: body.nodeId, ...body.nats };
}

async function credentials(stateDir: string, nodeId: string, values: { enroll?: string; api?: string }): Promise<Credentials | null> {
  const path = join(stateDir, 'credentials.json');
  const stored = await readFile(path, 'utf8').catch(() => null);
  if (stored) return JSON.parse(stored) as Credentials;
  if (!values.enroll) return null;
  if (!values.api) throw new AgentArgumentError('--api: required with --enroll (the URL of the Relaygrid API)');
  const creds = await enroll(values.api, values.enroll);
  if (creds.nodeId !== nodeId) throw new AgentArgumentError(`--enroll: the token is for node ${creds.nodeId}, not ${nodeId}`);
  await writeFile(path, JSON.stringify(creds), { mode: 0o600 });
  return creds;
}

function seconds(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback * 1000;
  const n = Number(raw);
  if (!Number.isFinite(n) || n <= 0) throw new AgentArgumentError(`--${name}: must be a positive number of seconds`);
  return n * 1000;
}

function port(name: string, raw: string): number {
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new AgentArgumentError(`--${name}: must be a port number`);
  return n;
}

type EdgeValues = { edge?: string; 'edge-http-port': string; 'edge-https-port': string; 'edge-address': string; 'edge-root'?: string };

/** The edge driver `--edge` asks for, or none; its per-site metrics go to `metrics`. */
function edgeDriver(values: EdgeValues, stateDir: string, logger: Logger, syncIntervalMs: number, observe: { nodeId: string; metrics: EdgeMetrics; intervalMs: number }): EdgeDriver | undefined {
  if (values.edge === undefined) return undefined;
  if (values.edge !== 'nginx' && values.edge !== 'caddy') throw new AgentArgumentError('--edge: must be nginx or caddy');
  const root = values['edge-root'] ?? join(stateDir, 'edge');
  const options = { root, address: values['edge-address'], httpPort: port('edge-http-port', values['edge-http-port']), httpsPort: port('edge-https-port', values['edge-https-port']), logger };
  return edgeDriverOf(values.edge, options, syncIntervalMs, { ...observe, spoolPath: join(stateDir, 'edge-traffic-spool.ndjson') });
}

/** /metrics (and /health) of an edge node's agent, on a port of its own. */
async function edgeMetricsServer(rawPort: string | undefined, host: string, metrics: EdgeMetrics, log: Logger): Promise<RunningOpsServer | null> {
  if (rawPort === undefined) return null;
  return startOpsServer({ role: 'agent', port: port('edge-metrics-port', rawPort), host, metrics, readiness: () => Promise.resolve({ ready: true, checks: {}, projectors: [] }), log });
}

export async function runAgent(config: Config, args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      node: { type: 'string' }, 'state-dir': { type: 'string' }, enroll: { type: 'string' }, api: { type: 'string' }, core: { type: 'string', default: 'xray' },
      'core-binary': { type: 'string' }, 'api-port': { type: 'string', default: '10085' }, 'sync-interval': { type: 'string' }, 'usage-interval': { type: 'string' },
      edge: { type: 'string' }, 'edge-http-port': { type: 'string', default: '80' }, 'edge-https-port': { type: 'string', default: '443' },
      'edge-address': { type: 'string', default: '0.0.0.0' }, 'edge-root': { type: 'string' },
      'edge-metrics-port': { type: 'string' }, 'edge-metrics-address': { type: 'string', default: '127.0.0.1' },
    },
  });
  if (!values.node) throw new AgentArgumentError(`--node: required\n\n${AGENT_USAGE}`);
  if (!values['state-dir']) throw new AgentArgumentError(`--state-dir: required\n\n${AGENT_USAGE}`);
  if (values.core !== 'v2ray' && values.core !== 'xray') throw new AgentArgumentError('--core: must be v2ray or xray');
  const apiPort = port('api-port', values['api-port']);
  const names = new Names(config.namespace);
  const nodeId = values.node;
  const stateDir = values['state-dir'];
  const log = createLogger(config.logLevel, { role: 'agent', nodeId });
  const syncIntervalMs = seconds('sync-interval', values['sync-interval'], 30);
  // Before anything is written or redeemed: a wrong --edge flag must cost nothing.
  const usageIntervalMs = seconds('usage-interval', values['usage-interval'], 10);
  const edgeMetrics = new EdgeMetrics();
  const edge = edgeDriver(values, stateDir, log, syncIntervalMs, { nodeId, metrics: edgeMetrics, intervalMs: usageIntervalMs });
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  const creds = await credentials(stateDir, nodeId, values);
  const servers = config.natsUrl.split(',').map((u) => u.trim());
  const driver = new ProcessCoreDriver({ flavour: values.core, apiPort, logger: log, ...(values['core-binary'] ? { binary: values['core-binary'] } : {}) });
  const agent = new NodeAgent({
    names, nodeId, stateDir, driver, apiPort, log, ...(edge ? { edge } : {}),
    syncIntervalMs,
    usageIntervalMs,
  });
  const metricsServer = edge ? await edgeMetricsServer(values['edge-metrics-port'], values['edge-metrics-address'], edgeMetrics, log) : null;
  // Listening from here on: a signal while NATS is still away must stop the core too.
  const signalled = untilSignal();
  // Users keep being served while NATS is away, or does not know this node's user yet.
  await agent.resume();
  const connecting = connect({
    servers,
    name: `relaygrid-agent-${nodeId}`,
    maxReconnectAttempts: -1,
    // Keep trying a NATS that does not answer yet instead of exiting.
    waitOnFirstConnect: true,
    // Replies to this node travel under its own prefix: the only inbox its credentials may read.
    inboxPrefix: creds?.inboxPrefix ?? names.fleetInbox(nodeId),
    ...(creds ? { user: creds.user, pass: creds.password } : {}),
  });
  const nc = await Promise.race([connecting, signalled.then(() => null)]);
  if (!nc) {
    log.info('agent stopping before NATS answered');
    await agent.stop(true);
    await metricsServer?.close();
    return;
  }
  await agent.start(nc);
  log.info({ nats: servers, enrolled: creds !== null }, 'agent started');
  const signal = await signalled;
  log.info({ signal }, 'agent stopping');
  await agent.stop(true);
  await metricsServer?.close();
  await nc.drain();
}
