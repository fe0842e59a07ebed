/**
 * User changes reach the nodes without a restart. Follows the identity log
 * from "now" (an ordered consumer on `<ns>.evt.identity.user.>`); for every
 * credential issue, suspension, reinstatement or forgetting it waits until
 * the proxy-credentials read model has the change, reads the user's row, and
 * pushes one `users` message per live node: the users to add and remove, as
 * that node's inbounds take them. The agent applies them through the core's
 * HandlerService at once.
 *
 * Pushes are at most once. The durable path is the rendered configuration:
 * the next version every agent fetches includes the same change, so a node
 * that missed a push (or was offline) converges at its next sync, and a core
 * restart agrees with what the API did.
 */
import type { ConsumerMessages } from '@nats-io/jetstream';
import type { Logger } from '../../infra/logger.js';
import type { Metrics } from '../../infra/metrics.js';
import type { FleetDeps } from '../../producers/fleet/fleet-deps.js';
import { proxyUserOf, type ProxyUser } from '../../producers/fleet/model.js';
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { proxyUsernameOf } from '../../producers/identity/proxy-credentials.js';
import type { ConfigStore } from './config-store.js';
import { userChanges, type UserChanges } from './user-changes.js';

const RELEVANT = new Set(['identity.ProxyCredentialsIssued', 'identity.UserSuspended', 'identity.UserReinstated', 'identity.UserForgotten']);
/** Changes arriving within this window go out together: one push per node, not one per change. */
const BATCH_MS = 20;
const READ_MODEL_WAIT_MS = 10_000;

export class UserSync {
  private messages?: ConsumerMessages;
  private running?: Promise<void>;
  private pending = new Map<string, number>();
  private flushing?: Promise<void>;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly d: FleetDeps,
    private readonly configs: ConfigStore,
    private readonly watcher: CheckpointWatcher,
    private readonly log: Logger,
    private readonly metrics?: Pick<Metrics, 'fleetUserPushes'>,
  ) {}

  async start(): Promise<void> {
    const stream = this.d.names.stream('identity');
    const info = await this.d.nats.jsm.streams.info(stream);
    const consumer = await this.d.nats.js.consumers.get(stream, { filter_subjects: this.d.names.aggregateSubjects('identity', 'user'), opt_start_seq: info.state.last_seq + 1 });
    this.messages = await consumer.consume({ max_messages: 512 });
    const messages = this.messages;
    this.running = (async () => {
      for await (const msg of messages) {
        for (const event of this.d.handler.store.decode(msg)) {
          if (!RELEVANT.has(event.type)) continue;
          this.pending.set((event.data as { userId: string }).userId, event.seq);
        }
        this.schedule();
      }
    })().catch((err: unknown) => this.log.error({ err }, 'user sync stopped'));
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    await this.messages?.close();
    await this.running;
    await this.flushing;
  }

  private schedule(): void {
    if (this.timer || this.pending.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flushing = (this.flushing ?? Promise.resolve())
        .then(() => this.flush())
        .catch((err: unknown) => this.log.warn({ err }, 'user push failed; agents converge at their next sync'));
    }, BATCH_MS);
  }

  private async flush(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    if (batch.size === 0) return;
    const upTo = Math.max(...batch.values());
    if (!(await this.watcher.waitFor('proxy-credentials', upTo, READ_MODEL_WAIT_MS))) this.log.warn({ upTo }, 'proxy-credentials read model is behind; pushing what it has');
    const ids = [...batch.keys()];
    const [rows, nodes] = await Promise.all([
      this.d.db.selectFrom('proxy_credentials').selectAll().where('user_id', 'in', ids).execute(),
      this.d.db.selectFrom('fleet_nodes').select(['id', 'desired_template']).where('retired', '=', false).where('desired_template', 'is not', null).execute(),
    ]);
    const active = new Map(rows.filter((r) => r.status === 'active').map((r) => [r.user_id, r]));
    const added: ProxyUser[] = [...active.values()].map(proxyUserOf);
    const removed = ids.filter((id) => !active.has(id)).map((userId) => ({ userId, proxyUsername: proxyUsernameOf(userId) }));
    // Rendered once per template, not per node: most of a fleet shares a handful of templates.
    const byTemplate = new Map<string, UserChanges>();
    for (const node of nodes) {
      const template = node.desired_template!;
      let changes = byTemplate.get(template);
      if (!changes) {
        changes = userChanges(await this.configs.templateProfiles(template), added, removed);
        byTemplate.set(template, changes);
      }
      this.d.push(node.id, { type: 'users', template, ...changes });
    }
    this.metrics?.fleetUserPushes.inc(nodes.length);
    this.log.debug({ added: added.length, removed: removed.length, nodes: nodes.length }, 'user changes pushed');
  }
}
