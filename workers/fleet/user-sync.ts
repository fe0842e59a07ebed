/**
 * User changes reach the nodes without a restart. Follows the identity log
 * (credential issues, suspensions, reinstatements, forgetting) and the plans
 * log (subscription started, activated, limited, reactivated, expired,
 * disabled, enabled, a period rolled onto new terms) from "now", with one
 * ordered consumer each. For a batch of changed users it waits until the
 * proxy-credentials and plans read models have the changes, reads who is
 * entitled to what (entitled-users.ts), and pushes one `users` message per
 * live node: the users to add and remove, as that node's inbounds take them
 * and as its labels let them on. The agent applies them through the core's
 * HandlerService at once (and closes a removed user's open connections).
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
import type { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { proxyUsernameOf } from '../../producers/identity/proxy-credentials.js';
import type { ConfigStore } from './config-store.js';
import { accessKey, entitledUsers, namedLabels, usersOnNode } from './entitled-users.js';
import { userChanges, type UserChanges } from './user-changes.js';

/** The logs followed, the events in them that change who is on a node, and the read model each waits for. */
const FOLLOWED = [
  { context: 'identity', aggregate: 'user', projector: 'proxy-credentials', relevant: (type: string) => IDENTITY_EVENTS.has(type) },
  { context: 'plans', aggregate: 'subscription', projector: 'plans', relevant: (type: string) => SUBSCRIPTION_EVENTS.has(type) },
] as const;
const IDENTITY_EVENTS = new Set(['identity.ProxyCredentialsIssued', 'identity.UserSuspended', 'identity.UserReinstated', 'identity.UserForgotten']);
/**
 * Subscription events that can change access or where it applies. Not
 * GrantAdded (a grant that restores access decides a SubscriptionReactivated
 * with it) nor the notices (thresholds, expiry reminders).
 */
const SUBSCRIPTION_EVENTS = new Set([
  'plans.SubscriptionStarted',
  'plans.PeriodRolled',
  'plans.SubscriptionActivated',
  'plans.SubscriptionLimited',
  'plans.SubscriptionReactivated',
  'plans.SubscriptionExpired',
  'plans.SubscriptionDisabled',
  'plans.SubscriptionEnabled',
]);
/** Changes arriving within this window go out together: one push per node, not one per change. */
const BATCH_MS = 20;
const READ_MODEL_WAIT_MS = 10_000;

export class UserSync {
  private readonly messages: ConsumerMessages[] = [];
  private readonly running: Promise<void>[] = [];
  private pending = new Set<string>();
  /** Per read model, the last sequence of the batch's events in its stream. */
  private upTo = new Map<string, number>();
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
    for (const followed of FOLLOWED) await this.follow(followed);
  }

  private async follow({ context, aggregate, projector, relevant }: (typeof FOLLOWED)[number]): Promise<void> {
    const stream = this.d.names.stream(context);
    const info = await this.d.nats.jsm.streams.info(stream);
    const consumer = await this.d.nats.js.consumers.get(stream, { filter_subjects: this.d.names.aggregateSubjects(context, aggregate), opt_start_seq: info.state.last_seq + 1 });
    const messages = await consumer.consume({ max_messages: 512 });
    this.messages.push(messages);
    this.running.push(
      (async () => {
        for await (const msg of messages) {
          for (const event of this.d.handler.store.decode(msg)) {
            if (!relevant(event.type)) continue;
            this.pending.add((event.data as { userId: string }).userId);
            this.upTo.set(projector, Math.max(this.upTo.get(projector) ?? 0, event.seq));
          }
          this.schedule();
        }
      })().catch((err: unknown) => this.log.error({ err, context }, 'user sync stopped')),
    );
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    for (const messages of this.messages) await messages.close();
    await Promise.all(this.running);
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
    const upTo = this.upTo;
    this.pending = new Set();
    this.upTo = new Map();
    if (batch.size === 0) return;
    await Promise.all(
      [...upTo].map(async ([projector, seq]) => {
        if (!(await this.watcher.waitFor(projector, seq, READ_MODEL_WAIT_MS))) this.log.warn({ projector, upTo: seq }, 'read model is behind; pushing what it has');
      }),
    );
    // Before anything is pushed: an agent that syncs after the push must get a version with the change.
    this.configs.invalidateUsers();
    const ids = [...batch];
    const [entitled, nodes] = await Promise.all([
      entitledUsers(this.d.db, ids),
      this.d.db.selectFrom('fleet_nodes').select(['id', 'labels', 'desired_template']).where('retired', '=', false).where('desired_template', 'is not', null).execute(),
    ]);
    // Everyone of the batch, with the username HTTP/SOCKS accounts are keyed by, for removals.
    const everyone = ids.map((userId) => ({ userId, proxyUsername: entitled.get(userId)?.user.proxyUsername ?? proxyUsernameOf(userId) }));
    const named = namedLabels(entitled.values());
    // Rendered once per template and access key, not per node: most of a fleet shares a handful of each.
    const byKey = new Map<string, UserChanges>();
    for (const node of nodes) {
      const template = node.desired_template!;
      const key = `${template}@${accessKey(named, node.labels)}`;
      let changes = byKey.get(key);
      if (!changes) {
        changes = userChanges(await this.configs.templateProfiles(template), usersOnNode(entitled.values(), node.labels), everyone);
        byKey.set(key, changes);
      }
      this.d.push(node.id, { type: 'users', template, ...changes });
    }
    this.metrics?.fleetUserPushes.inc(nodes.length);
    this.log.debug({ users: ids.length, entitled: entitled.size, nodes: nodes.length }, 'user changes pushed');
  }
}
