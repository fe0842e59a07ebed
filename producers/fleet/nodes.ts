/**
 * Nodes: registration (API, CLI, nodes.yaml), enrollment, drain and
 * retirement. The rules live in node.decider.ts; this is input checking, ids,
 * tokens and credentials.
 *
 * Enrollment: an operator issues a one-time token (`<nodeId>.<secret>`, only
 * its hash is recorded); the agent redeems it once for NATS credentials valid
 * for its own node: user `node-<nodeId>` with a fresh password whose bcrypt
 * hash goes into the event, so `relaygrid nats-config` can render the user
 * without ever holding the password.
 */
import { createHash, randomBytes } from 'node:crypto';
import bcrypt from 'bcryptjs';
import type { Written } from '../messaging/messaging-deps.js';
import { DomainError } from '../decider.js';
import type { Actor } from '../identity/identity-deps.js';
import type { FleetDeps } from './fleet-deps.js';
import type { NodeDescription } from './model.js';
import { checkEnrollmentToken, nodeDecider, type NodeSource } from './node.decider.js';

const NODE_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** A node label (and a role): also what edge sites' nodeLabels are checked against (producers/edge/site-validation.ts). */
export const NODE_LABEL = /^[a-z0-9][a-z0-9_-]{0,63}$/;
export const MAX_NODE_LABELS = 32;
const HOST = /^(\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:]+:[0-9a-fA-F:.]*|[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$/;
const TOKEN_TTL_MS = 24 * 3_600_000;
const BCRYPT_ROUNDS = 10;

export interface NodeInput {
  nodeId: string;
  address: string;
  region?: string;
  country?: string;
  city?: string;
  labels?: string[];
  roles?: string[];
}

function invalid(field: string, rule: string): DomainError {
  return new DomainError('invalid_node', `${field}: ${rule}`, { field });
}

/** Checks and normalises a node as an operator or nodes.yaml gives it; the error names the field. */
export function nodeDescription(input: NodeInput): NodeDescription {
  if (typeof input.nodeId !== 'string' || !NODE_ID.test(input.nodeId)) throw invalid('name', 'must be 1-63 lower-case letters, digits or "-", starting with a letter or digit');
  if (typeof input.address !== 'string' || !HOST.test(input.address)) throw invalid('address', 'must be a host name or an IP address');
  const text = (field: string, value: unknown, max: number) => {
    if (value === undefined || value === null) return '';
    if (typeof value !== 'string' || value.length > max) throw invalid(field, `must be text of at most ${max} characters`);
    return value;
  };
  const tokens = (field: string, value: unknown) => {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value) || value.length > MAX_NODE_LABELS || !value.every((v) => typeof v === 'string' && NODE_LABEL.test(v))) {
      throw invalid(field, 'must be a list of at most 32 lower-case tokens (letters, digits, "-", "_")');
    }
    return [...new Set(value as string[])].sort();
  };
  const country = text('country', input.country, 2).toUpperCase();
  if (country && !/^[A-Z]{2}$/.test(country)) throw invalid('country', 'must be an ISO 3166-1 alpha-2 code');
  return {
    nodeId: input.nodeId,
    address: input.address,
    region: text('region', input.region, 64),
    country,
    city: text('city', input.city, 128),
    labels: tokens('labels', input.labels),
    roles: tokens('roles', input.roles ?? ['proxy']),
  };
}

export const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

export interface NatsCredentials {
  nodeId: string;
  user: string;
  password: string;
}

export class Nodes {
  constructor(private readonly d: FleetDeps) {}

  /** A new node; `node_exists` if the name is taken. */
  async register(input: NodeInput, source: NodeSource, actor: Actor, now = new Date()): Promise<Written> {
    const node = nodeDescription(input);
    const { seq } = await this.d.decide(nodeDecider, 'node', node.nodeId, { type: 'RegisterNode', node, source, at: now }, actor);
    return { seq };
  }

  /** Create or update (PUT, nodes.yaml): the same description twice records nothing. */
  async describe(input: NodeInput, source: NodeSource, actor: Actor, now = new Date()): Promise<Written & { changed: boolean }> {
    const node = nodeDescription(input);
    const result = await this.d.decide(nodeDecider, 'node', node.nodeId, { type: 'DescribeNode', node, source, at: now }, actor);
    return { seq: result.seq, changed: result.events.length > 0 };
  }

  async issueEnrollmentToken(nodeId: string, actor: Actor, now = new Date()): Promise<Written & { token: string; expiresAt: Date }> {
    const token = `${nodeId}.${randomBytes(32).toString('base64url')}`;
    const expiresAt = new Date(now.getTime() + TOKEN_TTL_MS);
    const { seq } = await this.d.decide(nodeDecider, 'node', nodeId, { type: 'IssueEnrollmentToken', nodeId, tokenHash: tokenHash(token), expiresAt, at: now }, actor);
    return { seq, token, expiresAt };
  }

  /** Redeems a token: the credentials are answered once and never stored in the clear. */
  async enroll(token: string, now = new Date()): Promise<Written & NatsCredentials> {
    const nodeId = token.split('.')[0] ?? '';
    if (!NODE_ID.test(nodeId)) throw new DomainError('invalid_enrollment_token', 'the enrollment token is wrong, spent or expired');
    // Checked before the bcrypt hash, which costs tens of milliseconds: a public route must not spend that on a made-up token.
    // The decider checks again against the state it appends to, so a racing second redemption still fails.
    const { state } = await this.d.handler.load(nodeDecider, this.d.subject('node', nodeId));
    checkEnrollmentToken(state, tokenHash(token), now);
    const user = `node-${nodeId}`;
    const password = randomBytes(24).toString('base64url');
    const natsPasswordHash = await bcrypt.hash(password, BCRYPT_ROUNDS);
    const { seq } = await this.d.decide(nodeDecider, 'node', nodeId, { type: 'Enroll', nodeId, tokenHash: tokenHash(token), natsUser: user, natsPasswordHash, at: now }, { actor: `node:${nodeId}` });
    return { seq, nodeId, user, password };
  }

  async operate(type: 'Drain' | 'Undrain' | 'Retire', nodeId: string, actor: Actor, now = new Date()): Promise<Written> {
    const { seq, events } = await this.d.decide(nodeDecider, 'node', nodeId, { type, nodeId, by: actor.actor, at: now }, actor);
    // A retired node's agent learns it at once, and stops its core.
    if (type === 'Retire' && events.length > 0) this.d.push(nodeId, { type: 'desired', minSeq: seq });
    return { seq };
  }
}
