/**
 * The fleet's side of the agent protocol (agent-protocol.ts): one queue-group
 * subscription on `<ns>.fleet.agent.*.*` serves every agent. The node id is
 * read from the subject — per-node NATS permissions (infra/nats) make sure an
 * agent can only publish on its own — so node A can neither fetch node B's
 * configuration nor report for it.
 */
import type { Msg, Subscription } from '@nats-io/transport-node';
import { DomainError } from '../../producers/decider.js';
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import { AGENT_OPS, type AgentOp } from '../../infra/naming.js';
import type { Rollouts } from '../../producers/fleet/rollouts.js';
import type { FleetDeps } from '../../producers/fleet/fleet-deps.js';
import type { PersonKeys } from '../../producers/identity/crypto/person-keys.js';
import { appendConnections } from '../../producers/usage/connection-reports.js';
import { appendTick, parseTick } from '../../producers/usage/usage-ticks.js';
import { appendSiteTrafficTick, parseSiteTrafficTick, type SiteTrafficWire } from '../../producers/usage/site-traffic-ticks.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import type { ConfigStore } from './config-store.js';
import type { EdgeEndpoints } from './edge-endpoints.js';
import type { HealthTracker } from './health.js';
import type { IpLimiter } from './ip-limit.js';
import { refusal } from './refusal.js';
import { CONFIG_CHUNK_BYTES, type AgentReply, type ConfigReply, type ConfigRequest, type ConnectionsRequest, type DesiredReply, type DesiredRequest, type EdgeCertificateRequest, type EdgeReportRequest, type HeartbeatMessage, type IpsMessage, type ReportRequest, type UsageRequest } from './agent-protocol.js';

/** What connection reports and the IP limit need: the keyring that seals client IPs, and the limiter. */
export interface ConnectionServices {
  keys: PersonKeys;
  ipLimit: IpLimiter;
}

/** Published to every fleet worker, not to one of the queue group: each keeps its own view from all of them. */
const BROADCAST: ReadonlySet<AgentOp> = new Set(['heartbeat', 'ips']);

const READ_MODEL_WAIT_MS = 5_000;

export class AgentEndpoints {
  private readonly subs: Subscription[] = [];
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly d: FleetDeps,
    private readonly configs: ConfigStore,
    private readonly rollouts: Rollouts,
    private readonly health: HealthTracker,
    private readonly watcher: CheckpointWatcher,
    private readonly log: Logger,
    private readonly metrics: Pick<Metrics, 'fleetAgentRequests'> | undefined,
    private readonly connections: ConnectionServices,
    private readonly edge: EdgeEndpoints,
  ) {}

  /**
   * Requests go to one fleet worker of the queue group. Heartbeats go to
   * every fleet worker: each judges health from all of them (the node decider
   * keeps one change when two workers record it), where a queue group would
   * give each worker half the heartbeats and make it think nodes were down.
   * The live IP reports of the IP limit go to every worker for the same reason.
   */
  start(): void {
    const { nc } = this.d.nats;
    const handle = (msg: Msg) => {
      const handled = this.handle(msg).finally(() => this.inFlight.delete(handled));
      this.inFlight.add(handled);
    };
    const callback = (err: Error | null, msg: Msg) => (err ? this.log.warn({ err }, 'agent subscription failed') : handle(msg));
    for (const op of AGENT_OPS) {
      const subject = this.d.names.fleetAgentRequests(op);
      this.subs.push(nc.subscribe(subject, BROADCAST.has(op) ? { callback } : { queue: 'relaygrid-fleet', callback }));
    }
  }

  async stop(): Promise<void> {
    for (const sub of this.subs) sub.unsubscribe();
    await Promise.allSettled([...this.inFlight]);
  }

  private async handle(msg: Msg): Promise<void> {
    const parts = msg.subject.split('.');
    const nodeId = parts.at(-2) ?? '';
    const op = parts.at(-1) as AgentOp;
    let reply: AgentReply<unknown>;
    try {
      const body = msg.data.length > 0 ? (JSON.parse(msg.string()) as unknown) : {};
      reply = { ok: true, result: await this.dispatch(nodeId, op, body) };
    } catch (err) {
      const { status, code, message } = refusal(err);
      if (status >= 500 && code !== 'read_model_behind') this.log.error({ err, nodeId, op }, 'agent request failed');
      reply = { ok: false, error: { code, message } };
    }
    this.metrics?.fleetAgentRequests.inc({ op, outcome: reply.ok ? 'ok' : reply.error.code === 'internal' ? 'failed' : 'refused' });
    if (msg.reply) msg.respond(JSON.stringify(reply));
  }

  private async dispatch(nodeId: string, op: AgentOp, body: unknown): Promise<unknown> {
    switch (op) {
      case 'desired':
        return this.desired(nodeId, body as DesiredRequest);
      case 'config':
        return this.config(nodeId, body as ConfigRequest);
      case 'report': {
        const r = body as ReportRequest;
        await this.rollouts.report({ nodeId, template: String(r.template), version: String(r.version), rolloutId: r.rolloutId ?? null, outcome: r.outcome === 'applied' ? 'applied' : 'rejected', restarted: r.restarted === true, error: r.error ?? null });
        return {};
      }
      case 'heartbeat':
        this.health.beat(nodeId, body as HeartbeatMessage);
        this.connections.ipLimit.beat(nodeId);
        return {};
      case 'usage':
        return appendTick(this.d.handler.store, parseTick(nodeId, body as UsageRequest));
      case 'connections':
        return appendConnections(this.d.handler.store, this.connections.keys, nodeId, body as ConnectionsRequest);
      case 'ips':
        await this.connections.ipLimit.report(nodeId, body as IpsMessage);
        return {};
      case 'edge-desired':
        return this.edge.desired(nodeId);
      case 'edge-report':
        await this.edge.report(nodeId, body as EdgeReportRequest);
        return {};
      case 'edge-traffic':
        return appendSiteTrafficTick(this.d.handler.store, parseSiteTrafficTick(nodeId, body as SiteTrafficWire));
      case 'edge-certificate':
        return this.edge.certificate(nodeId, body as EdgeCertificateRequest);
    }
  }

  private async node(nodeId: string) {
    const row = await this.d.db.selectFrom('fleet_nodes').select(['id', 'retired', 'labels', 'desired_template', 'desired_rollout']).where('id', '=', nodeId).executeTakeFirst();
    if (!row) throw new DomainError('node_not_found', `no node ${nodeId}`);
    return row;
  }

  private async desired(nodeId: string, request: DesiredRequest): Promise<DesiredReply> {
    const minSeq = Number(request.minSeq ?? 0);
    if (minSeq > 0 && !(await this.watcher.waitFor('fleet', minSeq, READ_MODEL_WAIT_MS))) throw new DomainError('read_model_behind', `the fleet read model has not reached ${minSeq} yet; retry`);
    const node = await this.node(nodeId);
    if (node.retired || !node.desired_template) return { retired: node.retired, template: null, version: null, rolloutId: null, size: 0 };
    const rendered = await this.configs.render(node.desired_template, node.labels);
    return { retired: false, template: rendered.template, version: rendered.version, rolloutId: node.desired_rollout, size: rendered.bytes.length };
  }

  /** A chunk of a configuration, only of the version this node is meant to run (never another node's). */
  private async config(nodeId: string, request: ConfigRequest): Promise<ConfigReply> {
    const node = await this.node(nodeId);
    if (node.retired || !node.desired_template) throw new DomainError('no_configuration', `node ${nodeId} has no configuration`);
    const bytes = await this.configs.configBytes(node.desired_template, String(request.version));
    if (!bytes) throw new DomainError('stale_version', `version ${request.version} is not a configuration of node ${nodeId}'s template; ask again`);
    const offset = Math.max(0, Math.floor(Number(request.offset) || 0));
    return { total: bytes.length, data: Buffer.from(bytes.subarray(offset, offset + CONFIG_CHUNK_BYTES)).toString('base64') };
  }
}
