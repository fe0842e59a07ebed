/**
 * Prometheus metrics of one process. Every role registers into the same
 * registry, so `start` (all roles in one process) exposes one /metrics.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

const PREFIX = 'relaygrid_';
const MISNAMED_DEFAULT_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export class Metrics {
  readonly registry = new Registry();

  readonly projectorLag = new Gauge({
    name: 'relaygrid_projector_lag_events',
    help: 'Events of the projector\'s subject filter after its checkpoint, not yet applied (set from its first moment, on a standby too; when stopped, the failed event and all behind it)',
    labelNames: ['projector'],
    registers: [this.registry],
  });
  readonly projectorCheckpoint = new Gauge({
    name: 'relaygrid_projector_checkpoint_sequence',
    help: 'Stream sequence the projector has applied up to',
    labelNames: ['projector'],
    registers: [this.registry],
  });
  readonly projectorStopped = new Gauge({
    name: 'relaygrid_projector_stopped',
    help: '1 when the projector stopped on an event it could not decode or apply',
    labelNames: ['projector'],
    registers: [this.registry],
  });
  readonly projectorActive = new Gauge({
    name: 'relaygrid_projector_active',
    help: '1 when this instance holds the projector lock, 0 when it is a standby',
    labelNames: ['projector'],
    registers: [this.registry],
  });
  readonly projectedEvents = new Counter({
    name: 'relaygrid_projector_events_total',
    help: 'Events applied to read models',
    labelNames: ['projector'],
    registers: [this.registry],
  });
  readonly projectorBatchSeconds = new Histogram({
    name: 'relaygrid_projector_batch_seconds',
    help: 'Time to apply one batch and its checkpoint in one transaction',
    labelNames: ['projector'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly appends = new Counter({
    name: 'relaygrid_appends_total',
    help: 'Decisions by outcome: appended, duplicate (a retried message id), conflict (stale expectation, decided again), rejected (a domain rule said no)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly fleetAgentRequests = new Counter({
    name: 'relaygrid_fleet_agent_requests_total',
    help: 'Node agent requests to the fleet worker by operation and outcome: ok, refused (a stable error code), failed (internal error)',
    labelNames: ['op', 'outcome'],
    registers: [this.registry],
  });
  readonly fleetUserPushes = new Counter({
    name: 'relaygrid_fleet_user_pushes_total',
    help: 'User-change messages pushed to node agents (one per node per batch of changes)',
    registers: [this.registry],
  });
  readonly fleetHealthChanges = new Counter({
    name: 'relaygrid_fleet_node_health_changes_total',
    help: 'Node health changes recorded, by the new health',
    labelNames: ['health'],
    registers: [this.registry],
  });
  readonly fleetCutUnsupported = new Gauge({
    name: 'relaygrid_fleet_nodes_connection_cut_unsupported',
    help: 'Nodes whose agent reports it cannot close removed users\' open connections (the kernel refused SOCK_DESTROY: not root nor CAP_NET_ADMIN, or no CONFIG_INET_DIAG_DESTROY)',
    registers: [this.registry],
  });
  readonly fleetNodeHealth = new Gauge({
    name: 'relaygrid_fleet_node_health',
    help: 'One series per node that is not retired, 1 for the health this fleet worker last judged it in (healthy, degraded, down; unknown until first heard of)',
    labelNames: ['node', 'health'],
    registers: [this.registry],
  });
  readonly fleetRollouts = new Gauge({
    name: 'relaygrid_fleet_rollouts',
    help: 'Rollouts not yet final, by status (running, paused, halted), from the fleet read model',
    labelNames: ['status'],
    registers: [this.registry],
  });
  readonly gatewayConnections = new Gauge({
    name: 'relaygrid_gateway_connections',
    help: 'WebSocket connections open on this gateway',
    registers: [this.registry],
  });
  readonly gatewaySends = new Counter({
    name: 'relaygrid_gateway_sends_total',
    help: 'Send frames by outcome: stored (durable, `sent` answered), duplicate (a resend answered again), refused (an error frame)',
    labelNames: ['kind', 'outcome'],
    registers: [this.registry],
  });
  readonly gatewayDeliveries = new Counter({
    name: 'relaygrid_gateway_deliveries_total',
    help: '`msg` frames written to sockets, by path: live or backlog (resume)',
    labelNames: ['path'],
    registers: [this.registry],
  });
  readonly gatewayAcks = new Counter({
    name: 'relaygrid_gateway_acked_messages_total',
    help: 'Inbox entries acknowledged by devices and deleted',
    registers: [this.registry],
  });
  readonly gatewayRecoveries = new Counter({
    name: 'relaygrid_gateway_recoveries_total',
    help: 'Resumes by outcome: ok (gap filled) or resync (could not fill it)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly gatewayDisconnects = new Counter({
    name: 'relaygrid_gateway_disconnects_total',
    help: 'Closed connections by close code',
    labelNames: ['code'],
    registers: [this.registry],
  });
  readonly gatewayBacklogSeconds = new Histogram({
    name: 'relaygrid_gateway_backlog_drain_seconds',
    help: 'Time from a resume to its `synced` frame',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
    registers: [this.registry],
  });
  readonly gatewayFanoutSeconds = new Histogram({
    name: 'relaygrid_gateway_fanout_seconds',
    help: 'Time to hand one live message to every local socket it is for',
    buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1],
    registers: [this.registry],
  });
  readonly gatewayEvents = new Counter({
    name: 'relaygrid_gateway_metadata_events_total',
    help: 'Message metadata events (sent, delivered, expired, queued offline) by outcome',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly schedulerFired = new Counter({
    name: 'relaygrid_scheduler_fired_total',
    help: 'Scheduled commands fired (the fire resolved: done now, or already done before), by scheduler',
    labelNames: ['scheduler'],
    registers: [this.registry],
  });
  readonly schedulerFailed = new Counter({
    name: 'relaygrid_scheduler_failed_total',
    help: 'Scheduled command firings that threw; each is retried with backoff, by scheduler',
    labelNames: ['scheduler'],
    registers: [this.registry],
  });
  readonly schedulerLag = new Gauge({
    name: 'relaygrid_scheduler_lag_seconds',
    help: 'Seconds since the oldest item still due became due, as the leading instance saw it (0 on standbys and when nothing is due; take the max over instances)',
    labelNames: ['scheduler'],
    registers: [this.registry],
  });
  readonly schedulerActive = new Gauge({
    name: 'relaygrid_scheduler_active',
    help: '1 when this instance holds the scheduler lock and fires, 0 when it is a standby',
    labelNames: ['scheduler'],
    registers: [this.registry],
  });
  readonly webhookDeliveries = new Counter({
    name: 'relaygrid_webhook_deliveries_total',
    help: 'Webhook attempts and deliveries by outcome: delivered (2xx), retrying (an attempt failed, another is scheduled), failed (the last attempt failed), gone (410: the endpoint is disabled), cancelled (the endpoint was disabled or deleted first)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly webhookQueueDepth = new Gauge({
    name: 'relaygrid_webhook_queue_depth',
    help: 'Webhook deliveries not yet final (due now or waiting for a retry), as the leading delivery worker last counted them',
    registers: [this.registry],
  });
  readonly webhookAttemptSeconds = new Histogram({
    name: 'relaygrid_webhook_attempt_seconds',
    help: 'Time from sending a webhook to its answer (or the timeout)',
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly natsConnected = new Gauge({
    name: 'relaygrid_nats_connected',
    help: '1 while this process is connected to a NATS server, 0 while it is disconnected and reconnecting',
    registers: [this.registry],
  });
  readonly auditTreeSize = new Gauge({
    name: 'relaygrid_audit_tree_size',
    help: 'Leaves in the audit Merkle tree (set by the leading audit worker; take the max over instances)',
    registers: [this.registry],
  });
  readonly auditCheckpointSize = new Gauge({
    name: 'relaygrid_audit_checkpoint_size',
    help: 'Tree size of the last signed audit checkpoint',
    registers: [this.registry],
  });
  readonly auditCheckpointTime = new Gauge({
    name: 'relaygrid_audit_checkpoint_timestamp_seconds',
    help: 'Unix time the last audit checkpoint was signed (from Postgres at start, then each signature); 0 before the first',
    registers: [this.registry],
  });
  readonly auditActive = new Gauge({
    name: 'relaygrid_audit_active',
    help: '1 when this instance holds the audit lock and folds the audit stream, 0 otherwise',
    registers: [this.registry],
  });
  readonly httpDuration = new Histogram({
    name: 'relaygrid_http_request_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: PREFIX });
      // prom-client names these gauges `…_total`, which Prometheus reserves for counters (`promtool check
      // metrics` rejects them). They are only the sums of the same gauges without the suffix, which count
      // by type: `sum(relaygrid_nodejs_active_handles)` gives the same number.
      for (const name of MISNAMED_DEFAULT_GAUGES) this.registry.removeSingleMetric(`${PREFIX}${name}`);
    }
  }
}
