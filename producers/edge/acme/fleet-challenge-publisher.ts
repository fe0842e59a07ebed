/**
 * HTTP-01 answers for edge nodes on any host: the ACME leader writes the
 * token into `edge_acme_challenges`, pushes every edge node, and each node's
 * agent gets it in its next `edge-desired` answer, writes it into its edge's
 * challenge directory and says so in its `edge-report` (the fleet records an
 * acknowledgement per node). `publish` resolves only when every live edge
 * node that serves the site has acknowledged — the CA may ask any of them
 * behind round-robin DNS — and fails, naming the silent nodes, when they have
 * not within `ackTimeoutMs`.
 *
 * Why the edge-desired document and not a KV bucket the nodes watch: it is
 * the channel the node already has (its own subjects and credentials, the
 * push and the periodic sync as the safety net for a lost push), and its
 * report is the acknowledgement a watch would not give. A node only sees the
 * tokens of sites it serves.
 */
import type { Kysely } from 'kysely';
import type { AgentPush } from '../../fleet/fleet-deps.js';
import type { Database } from '../../../schema/database.js';
import { nodesServing } from '../edge-nodes.js';
import { assertChallengeToken, type ChallengePublisher } from './challenge-publisher.js';

export interface FleetChallengePublisherOptions {
  db: Kysely<Database>;
  push(nodeId: string, message: AgentPush): void;
  /** How long every node has to serve a token (default 60 s). */
  ackTimeoutMs?: number;
  /** How often acknowledgements are looked for (default 100 ms); nodes are pushed again every 20 looks. */
  pollMs?: number;
}

export class FleetChallengePublisher implements ChallengePublisher {
  constructor(
    private readonly siteId: string,
    private readonly o: FleetChallengePublisherOptions,
  ) {}

  async publish(token: string, keyAuthorization: string): Promise<void> {
    assertChallengeToken(token);
    await this.o.db
      .insertInto('edge_acme_challenges')
      .values({ token, site_id: this.siteId, key_authorization: keyAuthorization, created_at: new Date() })
      .onConflict((oc) => oc.column('token').doUpdateSet({ key_authorization: keyAuthorization }))
      .execute();
    const timeoutMs = this.o.ackTimeoutMs ?? 60_000;
    const pollMs = this.o.pollMs ?? 100;
    const deadline = Date.now() + timeoutMs;
    for (let look = 0; ; look++) {
      const nodes = await nodesServing(this.o.db, this.siteId);
      if (nodes.length === 0) throw new Error(`no edge node serves site ${this.siteId}: nothing could answer the CA's HTTP-01 check`);
      const acked = new Set((await this.o.db.selectFrom('edge_acme_challenge_acks').select('node_id').where('token', '=', token).execute()).map((r) => r.node_id));
      const silent = nodes.filter((node) => !acked.has(node));
      if (silent.length === 0) return;
      if (Date.now() > deadline) throw new Error(`edge nodes did not serve the HTTP-01 token within ${timeoutMs} ms: ${silent.join(', ')}`);
      if (look % 20 === 0) for (const node of silent) this.o.push(node, { type: 'edge' });
      await new Promise((resolve) => setTimeout(resolve, pollMs));
    }
  }

  async unpublish(token: string): Promise<void> {
    assertChallengeToken(token);
    const nodes = await nodesServing(this.o.db, this.siteId);
    await this.o.db.deleteFrom('edge_acme_challenges').where('token', '=', token).execute();
    // The nodes take the file down at their next sync; a token left there a while is harmless (it proves only the order that is over).
    for (const node of nodes) this.o.push(node, { type: 'edge' });
  }
}
