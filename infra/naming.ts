/**
 * Every subject, stream and bucket name derives from the namespace, so several
 * installations (or test runs) can share one NATS server without touching each
 * other: subjects start `<ns>.`, streams and buckets `<NS>_`.
 */
import { EVENT_CONTEXTS, type EventContext } from '../contracts/catalogue.js';

const TOKEN = /^[A-Za-z0-9_-]+$/;

/** What an agent asks or tells the fleet (workers/fleet/agent-endpoints.ts; `edge-*`: workers/fleet/edge-endpoints.ts). */
export const AGENT_OPS = ['desired', 'config', 'report', 'heartbeat', 'usage', 'connections', 'ips', 'edge-desired', 'edge-report', 'edge-traffic', 'edge-certificate'] as const;
export type AgentOp = (typeof AGENT_OPS)[number];

export class InvalidSubjectTokenError extends Error {
  readonly code = 'invalid_id';
}

export function assertToken(what: string, value: string): void {
  if (!TOKEN.test(value) || value.length > 128) {
    throw new InvalidSubjectTokenError(`${what} "${value}" must be 1-128 characters of A-Z, a-z, 0-9, '_' or '-'`);
  }
}

export class Names {
  readonly prefix: string;
  readonly upper: string;

  constructor(readonly namespace: string) {
    this.prefix = namespace;
    this.upper = namespace.toUpperCase().replace(/-/g, '_');
  }

  /** `RG_IDENTITY` */
  stream(context: EventContext): string {
    return `${this.upper}_${context.toUpperCase()}`;
  }

  get auditStream(): string {
    return `${this.upper}_AUDIT`;
  }

  /** `RG_AUDIT_CHECKPOINTS`: the audit worker's signed checkpoints. */
  get auditCheckpointStream(): string {
    return `${this.auditStream}_CHECKPOINTS`;
  }

  /** `rg.audit.checkpoint`: where the audit worker publishes them. */
  get auditCheckpointSubject(): string {
    return `${this.prefix}.audit.checkpoint`;
  }

  /** `rg.evt.identity.>`: everything a context stream holds. */
  contextSubjects(context: EventContext): string {
    return `${this.prefix}.evt.${context}.>`;
  }

  /** `rg.evt.identity.user.>` */
  aggregateSubjects(context: EventContext, aggregate: string): string {
    return `${this.prefix}.evt.${context}.${aggregate}.>`;
  }

  /** `rg.evt.identity.user.<id>`: one literal subject per aggregate instance. */
  aggregate(context: EventContext, aggregate: string, id: string): string {
    assertToken('aggregate type', aggregate);
    assertToken('aggregate id', id);
    return `${this.prefix}.evt.${context}.${aggregate}.${id}`;
  }

  /** Splits an aggregate subject into its parts; throws for anything else. */
  parse(subject: string): { context: EventContext; aggregate: string; id: string; stream: string } {
    const parts = subject.split('.');
    const [ns, evt, context, aggregate, id] = parts;
    if (parts.length !== 5 || ns !== this.prefix || evt !== 'evt' || !aggregate || !id || !isContext(context)) {
      throw new InvalidSubjectTokenError(`"${subject}" is not an aggregate subject of namespace ${this.namespace}`);
    }
    return { context, aggregate, id, stream: this.stream(context) };
  }

  /** KV bucket of Avro schemas keyed by fingerprint hex. */
  get schemaBucket(): string {
    return `${this.upper}_SCHEMAS`;
  }

  /** `RG_GUARDS`: one message per aggregate, the append guard of producers/event-store/append-guard.ts. Sourced by nothing. */
  get guardStream(): string {
    return `${this.upper}_GUARDS`;
  }

  /** `rg.guard.identity.user.<id>` for `rg.evt.identity.user.<id>`. */
  guard(aggregateSubject: string): string {
    const { context, aggregate, id } = this.parse(aggregateSubject);
    return `${this.prefix}.guard.${context}.${aggregate}.${id}`;
  }

  /** `RG_INBOX`: the messenger's per-device ciphertext inboxes; deletable, unlike every event stream. */
  get inboxStream(): string {
    return `${this.upper}_INBOX`;
  }

  /** `rg.inbox.>`: everything the inbox stream holds. */
  get inboxSubjects(): string {
    return `${this.prefix}.inbox.>`;
  }

  /** `rg.inbox.dev.<deviceId>`: entries addressed to one device (1:1 messages). */
  inboxDevice(deviceId: string): string {
    assertToken('device id', deviceId);
    return `${this.prefix}.inbox.dev.${deviceId}`;
  }

  /** `rg.inbox.grp.<groupId>`: group messages, stored once for every member. */
  inboxGroup(groupId: string): string {
    assertToken('group id', groupId);
    return `${this.prefix}.inbox.grp.${groupId}`;
  }

  /** `rg.live.user.<userId>`: core NATS, live frames for a user's connected devices, on whichever gateway. */
  liveUser(userId: string): string {
    assertToken('user id', userId);
    return `${this.prefix}.live.user.${userId}`;
  }

  /** `rg.live.group.<groupId>`: core NATS, one publish per group message reaches every gateway with members online. */
  liveGroup(groupId: string): string {
    assertToken('group id', groupId);
    return `${this.prefix}.live.group.${groupId}`;
  }

  /** `rg.presence.<userId>`: core NATS, a user's online/offline changes for the gateways of watchers. */
  presence(userId: string): string {
    assertToken('user id', userId);
    return `${this.prefix}.presence.${userId}`;
  }

  /** Object store of rollout templates (sealed), by content hash; kept for roll-backs. */
  get fleetTemplateBucket(): string {
    return `${this.upper}_FLEET_TEMPLATES`;
  }

  /** Object store of rendered node configurations (sealed), by content hash; short-lived, re-rendered on demand. */
  get fleetConfigBucket(): string {
    return `${this.upper}_FLEET_CONFIGS`;
  }

  /** Edge: sealed ACME certificates and keys by site, and the ACME account key (producers/edge/acme/certificate-store.ts). */
  get edgeCertBucket(): string {
    return `${this.upper}_EDGE_CERTS`;
  }

  /** `rg.fleet.push.<nodeId>`: core NATS, from the fleet to one node's agent (a new desired version, user changes). */
  fleetPush(nodeId: string): string {
    assertToken('node id', nodeId);
    return `${this.prefix}.fleet.push.${nodeId}`;
  }

  /** `rg.fleet.agent.<nodeId>.<op>`: from one node's agent to the fleet. Only that node's credentials may publish here. */
  fleetAgent(nodeId: string, op: AgentOp): string {
    assertToken('node id', nodeId);
    return `${this.prefix}.fleet.agent.${nodeId}.${op}`;
  }

  /** `rg.fleet.inbox.<nodeId>`: the agent's inbox prefix, so replies to one node are readable by that node only. */
  fleetInbox(nodeId: string): string {
    assertToken('node id', nodeId);
    return `${this.prefix}.fleet.inbox.${nodeId}`;
  }

  /** `rg.fleet.agent.*.<op>`: one operation of every agent, what the fleet worker listens on. */
  fleetAgentRequests(op: AgentOp): string {
    return `${this.prefix}.fleet.agent.*.${op}`;
  }

  /** `rg.ops`: the operators' NATS micro service (`nats micro ls`, `nats req rg.ops.rollout.pause …`). */
  get opsGroup(): string {
    return `${this.prefix}.ops`;
  }

  get allContexts(): readonly EventContext[] {
    return EVENT_CONTEXTS;
  }
}

function isContext(value: string | undefined): value is EventContext {
  return (EVENT_CONTEXTS as readonly string[]).includes(value ?? '');
}
