/**
 * The agent ↔ fleet protocol, JSON over core NATS request/reply on
 * `<ns>.fleet.agent.<nodeId>.<op>` (agent → fleet) and pushes on
 * `<ns>.fleet.push.<nodeId>` (fleet → agent, see AgentPush). The node id is
 * always taken from the subject, which only that node's credentials may
 * publish on; a body never names a node.
 */
import type { ChallengeAnswer, EdgeDesired, SiteOutcome } from '../../producers/edge/model.js';
import type { AgentReport } from '../../producers/fleet/rollouts.js';
import type { ConnectionsWire } from '../../producers/usage/connection-reports.js';
import type { TickWire } from '../../producers/usage/usage-ticks.js';

export type { AgentPush } from '../../producers/fleet/fleet-deps.js';
export type { ConnectionsWire, TickWire };

export interface DesiredRequest {
  /** Wait until the fleet read model has reached this sequence (from a push). */
  minSeq?: number;
}

export interface DesiredReply {
  /** The node was retired: stop serving. */
  retired: boolean;
  template: string | null;
  version: string | null;
  rolloutId: string | null;
  /** Bytes of the rendered configuration, fetched with `config` in chunks. */
  size: number;
}

export interface ConfigRequest {
  version: string;
  offset: number;
}

export interface ConfigReply {
  total: number;
  /** base64 of bytes [offset, offset + n). */
  data: string;
}

/** The node's outcome for a version; the node id comes from the subject. */
export type ReportRequest = Omit<AgentReport, 'nodeId'>;

export interface HeartbeatMessage {
  coreRunning: boolean;
  version: string | null;
  /**
   * Whether the agent can close a removed user's open connections: `ok` once a
   * cut worked, `unsupported` when the kernel refused SOCK_DESTROY (not root
   * nor CAP_NET_ADMIN, or no CONFIG_INET_DIAG_DESTROY), `unknown` before the
   * first cut, `off` when the agent runs without it. Absent from older agents.
   */
  connectionCut?: 'unknown' | 'ok' | 'unsupported' | 'off';
}

export type UsageRequest = TickWire;

/** Connections opened or closed since the last report (spooled, request/reply: one fleet worker appends it). */
export type ConnectionsRequest = ConnectionsWire;

/**
 * The live client IPs of some users on this node, each entry replacing what
 * the fleet held for that user on this node (`ips: []`: none any more).
 * Published, not requested: every fleet worker hears it, like heartbeats, and
 * keeps the union over all nodes. Sent on every change and as a snapshot of
 * all connected users every so often; an entry not refreshed within `ttlMs`
 * is dropped (a lost message, an agent gone quiet).
 */
export interface IpsMessage {
  ttlMs: number;
  users: { userId: string; ips: { ip: string; since: string }[] }[];
}

/**
 * `edge-desired` (no body): the sites an edge node serves, their ACME
 * certificates' serials, and their fingerprint (producers/edge/edge-desired.ts);
 * and the HTTP-01 answers of its sites being validated now (not part of the
 * fingerprint: tokens are files, no reload).
 */
export type EdgeDesiredReply = EdgeDesired & { challenges: ChallengeAnswer[] };

/** `edge-report`: each site's outcome of applying the edge desired state `version`, and the challenge tokens the node serves now. */
export interface EdgeReportRequest {
  version: number;
  outcomes: SiteOutcome[];
  /** Absent: the node says nothing about tokens (an older agent). */
  challenges?: string[];
}

/** `edge-certificate {siteId}`: the site's current ACME certificate with its key, for a node that serves the site. */
export interface EdgeCertificateRequest {
  siteId: string;
}

export interface EdgeCertificateReply {
  siteId: string;
  serial: string;
  certificatePem: string;
  privateKeyPem: string;
  /** ISO 8601. */
  notAfter: string;
}

export type AgentReply<T> = { ok: true; result: T } | { ok: false; error: { code: string; message: string } };

/** Chunk size of configuration fetches: well under NATS's default 1 MiB max_payload once base64'd. */
export const CONFIG_CHUNK_BYTES = 512 * 1024;

/** How often agents heartbeat; the fleet judges a node down after three missed. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
