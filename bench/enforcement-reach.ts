/**
 * Enforcement reach at 1,000 nodes: 1,000 users cross their allowance in one
 * tick interval; how long from each user's SubscriptionLimited append until
 * every node has removed them, against a raw core-NATS replay of the same
 * pushes in the same run.
 *
 * Processes: this one runs every projector, the fleet worker (its user sync
 * follows the plans log) and the plans context; BENCH_CHILDREN children
 * (bench/fleet-rollout.ts's `agents` child) run BENCH_NODES real NodeAgents
 * with the acknowledge-only core driver, which records when the agent calls
 * removeUser.
 *
 * Set-up (not measured): the nodes, one `vless` profile, BENCH_USERS users
 * with proxy credentials (the password hasher is replaced by a constant: these
 * users never sign in, and argon2 for 1,000 of them would take minutes), a
 * 1 GiB block-overage plan granted to each, one rollout so every node runs
 * every user, every node healthy.
 *
 * Measured:
 *   enforcement  for each user (32 in flight, all within about one tick
 *                interval), the time before plans.subscriptions.markLimited
 *                — what metering issues when a tick crosses the allowance —
 *                to each node's first removeUser of that user. Per user the
 *                last node's time is "removed on every node".
 *   raw          the floor: every `users` push the fleet worker sent in the
 *                enforcement round (node and size recorded), published again
 *                as bare core-NATS messages of the same sizes to per-node
 *                subjects the children subscribe; latency = arrival − the
 *                time before the first publish.
 *
 * The events are appended by the metering worker's command (markLimited),
 * not by real ticks: the figure starts at the decision, not at the fold.
 *
 * Env: BENCH_NODES (1000), BENCH_CHILDREN (4), BENCH_USERS (1000),
 *      BENCH_REACH_TIMEOUT_MS (60000), BENCH_STATE_DIR (/dev/shm), BENCH_QUIET_WAIT_MS.
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { PASSWORD_HASH } from './identity-fill.js';
import { openIdentity } from '../infra/roles/api.js';
import { startFleetWorker } from '../infra/roles/fleet.js';
import { startProjectors } from '../infra/roles/projectors.js';
import type { Runtime } from '../infra/runtime.js';
import { Plans } from '../producers/plans/plans.js';
import type { ChildStatus, StartArgs } from './fleet-rollout.js';
import { countingLogger, epochMs, formatCounts, grantEveryone, mergeCounts, ms, nodeId, rawSubject, stopChildren, untilEntitled } from './fleet-support.js';
import { Child, summary, type Summary } from './processes.js';
import { envInt, fmt, inWindow, machine, runMain, table, timed, until, verdict, waitQuiet, withBench } from './support.js';

const NODES = envInt('BENCH_NODES', 1000);
const CHILDREN = Math.min(envInt('BENCH_CHILDREN', 4), NODES);
const USERS = envInt('BENCH_USERS', 1000);
const REACH_TIMEOUT_MS = envInt('BENCH_REACH_TIMEOUT_MS', 60_000);
const STATE_ROOT = process.env['BENCH_STATE_DIR'] ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
/** Users appending at once: their events all land within about one tick interval. */
const IN_FLIGHT = 32;
const GOAL_P99_MS = 3_000;
const ALLOWANCE = 2n ** 30n;
const operator = { actor: 'operator:bench' };

interface Pushed {
  nodeId: string;
  bytes: number;
}

async function main(): Promise<void> {
  await withBench('bench-enforcement-reach', async ({ rt: base, namespace, config }) => {
    console.log(`machine: ${await machine(base)}`);
    console.log(`nodes ${fmt.int(NODES)} in ${CHILDREN} agent processes, users ${fmt.int(USERS)}, ${IN_FLIGHT} appends in flight, state on ${STATE_ROOT}`);
    const fleetLog = countingLogger();
    const rt: Runtime = { ...base, log: fleetLog.log };
    const stateDir = join(STATE_ROOT, `rg-bench-${namespace}`);
    await mkdir(stateDir, { recursive: true });
    const projectors = startProjectors(rt);
    const worker = await startFleetWorker(rt);
    const identity = openIdentity(rt);
    const children: Child[] = [];
    try {
      await run({ rt, namespace, natsUrl: config.natsUrl, stateDir, worker, identity, children });
    } finally {
      // What the worker and projectors complained about, whether the run failed or not.
      console.log(`fleet process log lines (warn+): ${formatCounts(fleetLog.counts())}`);
      await stopChildren(children);
      await worker.close();
      await projectors.close();
      await identity.stop();
      await rm(stateDir, { recursive: true, force: true });
    }
  });
}

interface Bench {
  rt: Runtime;
  namespace: string;
  natsUrl: string;
  stateDir: string;
  worker: Awaited<ReturnType<typeof startFleetWorker>>;
  identity: ReturnType<typeof openIdentity>;
  children: Child[];
}

async function run({ rt, namespace, natsUrl, stateDir, worker, identity, children }: Bench): Promise<void> {
  const { fleet } = worker;
  const plans = new Plans({ handler: fleet.deps.handler, db: rt.db });
  const ids = Array.from({ length: NODES }, (_, i) => nodeId(i));

  // ---------------------------------------------------------------- set-up
  await inWindow(NODES, 32, (i) => fleet.nodes.register({ nodeId: ids[i]!, address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, labels: [] }, 'api', operator));
  await fleet.profiles.create({ profileId: 'vless-1', kind: 'vless', port: 20_000, labels: [] }, operator);
  identity.deps.passwords.hash = () => Promise.resolve(PASSWORD_HASH);
  const users: string[] = [];
  const userSeconds = await timed(async () => {
    await inWindow(USERS, 16, async (i) => {
      const { userId } = await identity.accounts.register({ email: `reach-${i}-${namespace}@bench.relaygrid.test`, password: 'unused' }, operator);
      users.push(userId);
    });
    await grantEveryone(plans, users, operator, { allowanceBytes: ALLOWANCE.toString(), overage: 'block' });
    await untilEntitled(rt, USERS);
  });
  console.log(`set-up: ${fmt.int(USERS)} users with proxy credentials and a ${ALLOWANCE / 2n ** 30n} GiB block-overage plan in ${fmt.s(userSeconds)} s`);

  const startSeconds = await timed(async () => {
    for (let c = 0; c < CHILDREN; c++) children.push(new Child('./fleet-rollout.js', ['agents']));
    await Promise.all(
      children.map((child, c) => child.request<number>('start', { natsUrl, namespace, child: c, stateDir: join(stateDir, `c${c}`), nodeIds: ids.filter((_, i) => i % CHILDREN === c) } satisfies StartArgs)),
    );
    await until('every node to be healthy', async () => (await rt.db.selectFrom('fleet_nodes').select(sql<number>`count(*)::int`.as('n')).where('health', '=', 'healthy').executeTakeFirstOrThrow()).n >= NODES, 120_000, 100);
    const { rolloutId } = await fleet.rollouts.plan({ reason: 'enforcement reach' }, operator);
    await until('the rollout to complete', async () => (await rt.db.selectFrom('fleet_rollouts').select('status').where('id', '=', rolloutId).executeTakeFirstOrThrow()).status === 'completed', 300_000, 100);
  });
  console.log(`set-up: ${fmt.int(NODES)} agents started, healthy and running every user in ${fmt.s(startSeconds)} s`);

  // ---------------------------------------------------------------- enforcement
  const periods = new Map((await rt.db.selectFrom('subscriptions').select(['user_id', 'period_start']).execute()).map((r) => [r.user_id, r.period_start!]));
  // Observation only: which node each push went to and how big it was, for the raw replay.
  const pushed: Pushed[] = [];
  const push = fleet.deps.push.bind(fleet.deps);
  fleet.deps.push = (id, message) => {
    pushed.push({ nodeId: id, bytes: JSON.stringify(message).length });
    push(id, message);
  };
  await waitQuiet();
  const waiting = Promise.all(children.map((c) => c.request<Record<string, number[]>>('removalsOf', { emails: users, timeoutMs: REACH_TIMEOUT_MS })));
  const appendedAt = new Map<string, number>();
  const first = epochMs();
  await inWindow(USERS, IN_FLIGHT, async (i) => {
    const userId = users[i]!;
    appendedAt.set(userId, epochMs());
    await plans.subscriptions.markLimited(userId, periods.get(userId)!, ALLOWANCE + 1n, 'bench');
  });
  const appendSpread = epochMs() - first;
  const removals = await waiting;
  fleet.deps.push = push;
  const pairs: number[] = [];
  const everywhere: number[] = [];
  let complete = 0;
  for (const userId of users) {
    const times = removals.flatMap((r) => r[userId] ?? []).map((t) => t - appendedAt.get(userId)!);
    pairs.push(...times);
    if (times.length === NODES) {
      complete++;
      everywhere.push(Math.max(...times));
    }
  }
  const limited = (await rt.db.selectFrom('subscriptions').select(sql<number>`count(*)::int`.as('n')).where('status', '=', 'limited').executeTakeFirstOrThrow()).n;
  const reach = { pairs: summary(pairs), everywhere: summary(everywhere) };
  console.log(
    `  enforcement: ${fmt.int(USERS)} SubscriptionLimited appended within ${fmt.s(appendSpread / 1000)} s (${fmt.int(limited)} limited in the read model); ${fmt.int(complete)}/${fmt.int(USERS)} users removed from all ${fmt.int(NODES)} nodes; ` +
      `${fmt.int(pushed.length)} pushes, ${fmt.int(pushed.reduce((n, p) => n + p.bytes, 0) / 1024)} KB`,
  );

  // ---------------------------------------------------------------- raw replay of the same pushes
  await waitQuiet();
  const round = 1;
  const childOf = new Map(ids.map((id, i) => [id, i % CHILDREN]));
  const want = Array.from({ length: CHILDREN }, (_, c) => pushed.filter((p) => childOf.get(p.nodeId) === c).length);
  const rawWaiting = Promise.all(children.map((c, i) => c.request<number[]>('raw', { round, want: want[i], timeoutMs: REACH_TIMEOUT_MS })));
  const head = JSON.stringify({ round, pad: '' }).length;
  const t0 = epochMs();
  for (const p of pushed) rt.nats.nc.publish(rawSubject(rt.names, p.nodeId), JSON.stringify({ round, pad: 'x'.repeat(Math.max(0, p.bytes - head)) }));
  await rt.nats.nc.flush();
  const raw = summary((await rawWaiting).flat().map((t) => t - t0));

  // ---------------------------------------------------------------- figures
  console.log();
  const row = (name: string, s: Summary) => [name, fmt.int(s.count), ms(s.min), ms(s.p50), ms(s.p99), ms(s.max)];
  console.log(
    table(
      ['', 'samples', 'first ms', 'p50 ms', 'p99 ms', 'max ms'],
      [row('append → removed on every node (per user)', reach.everywhere), row('append → removed on one node (per user and node)', reach.pairs), row('raw core-NATS replay of the same pushes (per message)', raw)],
    ),
  );
  console.log();
  const ok = complete === USERS && reach.everywhere.p99 < GOAL_P99_MS;
  console.log(
    `enforcement reach, append → removed on every node: p50 ${ms(reach.everywhere.p50)} ms, p99 ${ms(reach.everywhere.p99)} ms = ${(reach.everywhere.p99 / raw.p99).toFixed(1)}× the raw replay's p99 (${ms(raw.p99)} ms)  (goal p99 < ${GOAL_P99_MS} ms)  ${verdict(ok)}`,
  );
  const statuses = await Promise.all(children.map((c) => c.request<ChildStatus>('status')));
  console.log(`agents: ${fmt.int(statuses.reduce((n, s) => n + s.restarts, 0))} core restarts, ${fmt.int(statuses.reduce((n, s) => n + s.liveUserChanges, 0))} live user changes; log lines (warn+): ${formatCounts(mergeCounts(statuses.map((s) => s.logs)))}`);
}

runMain(main);
