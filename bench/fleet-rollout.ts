/**
 * The fleet at 1,000 nodes: rollout latency and suspension reach, with a raw
 * core-NATS fan-out as the floor, in the same run.
 *
 * Processes:
 *   this process   the fleet worker (startFleetWorker: agent endpoints, health,
 *                  user sync, ops service), every projector, the Fleet facade
 *                  and the identity context: what `relaygrid start` runs in
 *                  one process. The projectors are startProjectors' but for
 *                  'fleet', which runs in the same Projector runtime with its
 *                  apply wrapped to count batches and time them (observation
 *                  only), to show where the read model's delay comes from.
 *   BENCH_CHILDREN children (this file, argv `agents`), each running
 *                  BENCH_NODES / BENCH_CHILDREN real NodeAgents on one NATS
 *                  connection of its own, with an acknowledge-only core driver
 *                  (workers/agent/core/ack-driver.ts). Nodes are dealt to the
 *                  children round-robin, so every rollout wave spans them all.
 *                  State directories live on tmpfs (/dev/shm): a real node
 *                  fsyncs to its own disk, not to one disk shared by 1,000.
 *
 * Set-up (not measured): register the nodes (concurrently), one `vless`
 * profile for every node, BENCH_USERS users with proxy credentials (argon2:
 * slow, so only a few dozen), start the agents (heartbeat every 5 s, periodic
 * sync every 60 s so only pushes drive them), wait until every node is healthy.
 *
 * Measured:
 *   rollout      fleet.rollouts.plan(); until every node's NodeConfigApplied is
 *                in fleet_nodes (applied_template = desired_template) and the
 *                rollout is completed. Per node: its wave's start
 *                (RolloutWaveStarted.startedAt, read from the rollout's events)
 *                to its NodeConfigApplied.appliedAt (fleet_nodes.applied_at)
 *                and to its RolloutNodeReported (fleet_rollout_nodes.reported_at).
 *                Rollout 1 brings the first profile, each later one adds a
 *                profile (a new inbound: every agent restarts its core).
 *   suspension   identity.admin.suspend(user); for every node, the time its
 *                agent called driver.removeUser for that user, minus the time
 *                before the suspend call (epochMs, comparable across processes).
 *   raw          the floor: this process publishes one core-NATS message (the
 *                size of the users push) to each node's subject
 *                `<ns>.benchraw.<nodeId>` on its runtime connection; each child
 *                subscribes one subject per node, as the agents do, and records
 *                the arrival. Latency = arrival − time before the first publish.
 *   Suspension and raw rounds alternate.
 *
 * Env: BENCH_NODES (1000), BENCH_CHILDREN (4), BENCH_USERS (50), BENCH_ROLLOUTS (2),
 *      BENCH_SUSPENSIONS (3), BENCH_HEARTBEAT_MS (5000), BENCH_SYNC_MS (60000),
 *      BENCH_ROLLOUT_TIMEOUT_MS (300000), BENCH_REACH_TIMEOUT_MS (30000),
 *      BENCH_STATE_DIR (/dev/shm), BENCH_QUIET_WAIT_MS (60000).
 */
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { sql } from 'kysely';
import { openIdentity } from '../infra/roles/api.js';
import { startFleetWorker } from '../infra/roles/fleet.js';
import { projectorDeps, startProjectors } from '../infra/roles/projectors.js';
import { PROJECTIONS } from '../projectors/catalogue.js';
import { fleetProjection } from '../projectors/fleet/fleet.projection.js';
import { Projector } from '../projectors/runtime/projector.js';
import { Names } from '../infra/naming.js';
import type { Runtime } from '../infra/runtime.js';
import { NodeAgent } from '../workers/agent/agent.js';
import { AckCoreDriver } from '../workers/agent/core/ack-driver.js';
import { Plans } from '../producers/plans/plans.js';
import { countingLogger, epochMs, formatCounts, grantEveryone, mergeCounts, ms, nodeId, rawSubject, stopChildren, untilEntitled } from './fleet-support.js';
import { Child, cpuOfPid, serveRequests, summary, type Summary } from './processes.js';
import { cpuSample, cpuSince, envInt, fmt, inWindow, machine, runMain, table, timed, until, verdict, waitQuiet, withBench } from './support.js';

const NODES = envInt('BENCH_NODES', 1000);
const CHILDREN = Math.min(envInt('BENCH_CHILDREN', 4), NODES);
const USERS = envInt('BENCH_USERS', 50);
const ROLLOUTS = envInt('BENCH_ROLLOUTS', 2);
const SUSPENSIONS = Math.min(envInt('BENCH_SUSPENSIONS', 3), USERS);
const HEARTBEAT_MS = envInt('BENCH_HEARTBEAT_MS', 5_000);
const SYNC_MS = envInt('BENCH_SYNC_MS', 60_000);
const ROLLOUT_TIMEOUT_MS = envInt('BENCH_ROLLOUT_TIMEOUT_MS', 300_000);
const REACH_TIMEOUT_MS = envInt('BENCH_REACH_TIMEOUT_MS', 30_000);
const STATE_ROOT = process.env['BENCH_STATE_DIR'] ?? (existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
/** Suspension must reach every node's core within this, at the 99th percentile. */
const GOAL_REACH_P99_MS = 3_000;
const FIRST_PORT = 20_000;
const operator = { actor: 'operator:bench' };

// ================================================================ child: agents

/** Also the child of bench/enforcement-reach.ts, which starts it as `fleet-rollout.js agents`. */
export interface StartArgs {
  natsUrl: string;
  namespace: string;
  nodeIds: string[];
  stateDir: string;
  child: number;
}

export interface ChildStatus {
  /** Template each agent has applied (null: none yet). */
  applied: (string | null)[];
  syncs: number;
  restarts: number;
  liveUserChanges: number;
  logs: Record<string, { n: number; first: string }>;
}

function agentsChild(): void {
  let nc: NatsConnection | undefined;
  let stateDir = '';
  const agents: NodeAgent[] = [];
  const { log, counts } = countingLogger();
  /** email → every node's first removal time; waiters resolve once a count is reached. */
  const removals = new Map<string, number[]>();
  /** Removals of the emails a `removalsOf` request waits for, counted as they come (a recount per removal would be the bottleneck). */
  const watched = { emails: new Set<string>(), count: 0 };
  const raw = new Map<number, number[]>();
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of [...waiters]) w();
  };
  const waitCount = (read: () => number, want: number, timeoutMs: number) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (read() < want) return;
        clearTimeout(timer);
        waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        resolve();
      }, timeoutMs);
      waiters.add(check);
      check();
    });

  const stop = async () => {
    await Promise.all(agents.map((a) => a.stop(true)));
    agents.length = 0;
    await nc?.drain().catch(() => undefined);
    nc = undefined;
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  };

  serveRequests(
    {
      start: async (a) => {
        const args = a as unknown as StartArgs;
        const names = new Names(args.namespace);
        stateDir = args.stateDir;
        nc = await connect({ servers: args.natsUrl, name: `bench-agents-${args.child}` });
        const conn = nc;
        // The raw baseline: one subscription per node, like the agents' push subscriptions.
        for (const id of args.nodeIds) {
          conn.subscribe(rawSubject(names, id), {
            callback: (err, msg) => {
              if (err) return;
              const at = epochMs();
              const { round } = JSON.parse(msg.string()) as { round: number };
              let list = raw.get(round);
              if (!list) raw.set(round, (list = []));
              list.push(at);
              wake();
            },
          });
        }
        await inWindow(args.nodeIds.length, 25, async (i) => {
          const id = args.nodeIds[i]!;
          const driver = new AckCoreDriver(epochMs);
          const removed = new Set<string>();
          // A suspension reaches a node once: its first removal of the user, whichever inbound.
          driver.onUserChange = ({ op, email, at }) => {
            if (op !== 'removeUser' || !email || removed.has(email)) return;
            removed.add(email);
            let list = removals.get(email);
            if (!list) removals.set(email, (list = []));
            list.push(at);
            if (watched.emails.has(email)) watched.count++;
            wake();
          };
          const agent = new NodeAgent({
            nc: conn,
            names,
            nodeId: id,
            stateDir: join(args.stateDir, id),
            driver,
            apiPort: 10_000 + i,
            log,
            syncIntervalMs: SYNC_MS,
            heartbeatIntervalMs: HEARTBEAT_MS,
            // No traffic is ever reported here, so collection finds nothing to send.
            usageIntervalMs: 10_000,
            // No core, so no connections to close (and no FIFO per agent); bench/connection-cut.ts measures the cut on a real core.
            cutConnections: false,
          });
          agents.push(agent);
          await agent.start();
        });
        await conn.flush();
        return agents.length;
      },
      status: (): ChildStatus => ({
        applied: agents.map((a) => a.appliedTemplate),
        syncs: agents.reduce((n, a) => n + a.stats.syncs, 0),
        restarts: agents.reduce((n, a) => n + a.stats.restarts, 0),
        liveUserChanges: agents.reduce((n, a) => n + a.stats.liveUserChanges, 0),
        logs: counts(),
      }),
      removals: async (a) => {
        const email = a['email'] as string;
        await waitCount(() => removals.get(email)?.length ?? 0, agents.length, a['timeoutMs'] as number);
        return removals.get(email) ?? [];
      },
      /** Every node's first removal of each of `emails`, once all are in (or at the timeout). */
      removalsOf: async (a) => {
        const emails = a['emails'] as string[];
        watched.emails = new Set(emails);
        watched.count = emails.reduce((n, e) => n + (removals.get(e)?.length ?? 0), 0);
        await waitCount(() => watched.count, emails.length * agents.length, a['timeoutMs'] as number);
        return Object.fromEntries(emails.map((e) => [e, removals.get(e) ?? []]));
      },
      /** Arrival times of the round's raw messages: `want` of them (default one per node). */
      raw: async (a) => {
        const round = a['round'] as number;
        await waitCount(() => raw.get(round)?.length ?? 0, (a['want'] as number | undefined) ?? agents.length, a['timeoutMs'] as number);
        return raw.get(round) ?? [];
      },
      cpu: () => process.cpuUsage(),
      stop,
    },
    stop,
  );
}

// ================================================================ parent

interface RolloutRun {
  round: number;
  targets: number;
  /** Each wave: nodes, start and last applied, in seconds after the plan() call. */
  waves: { size: number; start: number; end: number }[];
  /** plan() call → plan() answered. */
  planSeconds: number;
  /** plan() call → the last report recorded (its RolloutNodeReported time). */
  lastReportSeconds: number;
  /** plan() call → every NodeConfigApplied in fleet_nodes. */
  appliedSeconds: number;
  /** plan() call → rollout completed in fleet_rollouts. */
  completedSeconds: number;
  applied: Summary;
  reported: Summary;
  conflicts: number;
  /** The fleet projection during the rollout: transactions, events, time inside apply. */
  projection: ApplyStats;
  /** The rollout's targets and waves as JSON, and as stored (compressed): every batch with a report reads, parses and writes them again. */
  rowKb: { json: number; stored: number };
  cores: Cores;
}

interface ApplyStats {
  batches: number;
  events: number;
  applyMs: number;
}

interface ReachRun {
  kind: 'suspension' | 'raw';
  round: number;
  reached: number;
  latency: Summary;
}

interface Cores {
  fleet: number;
  agents: number;
  nats: number;
  postgres: number;
  other: number;
}

/** CPU of this process, the agent children, nats-server, Postgres and the rest, in cores, over a measured phase. */
function coreMeter(children: readonly Child[]): () => Cores {
  const start = cpuSample();
  const kids = () => children.reduce((s, c) => s + cpuOfPid(c.pid), 0);
  const kids0 = kids();
  return () => {
    const wall = (cpuSample().at - start.at) / 1000;
    const agents = (kids() - kids0) / wall;
    const use = cpuSince(start, 1);
    return { fleet: use.self, agents, nats: use.nats, postgres: use.postgres, other: Math.max(0, use.other - agents) };
  };
}

const coresLine = (c: Cores) =>
  `cpu: fleet process ${c.fleet.toFixed(2)}, agents ${c.agents.toFixed(2)}, nats-server ${c.nats.toFixed(2)}, postgres ${c.postgres.toFixed(2)}, other ${c.other.toFixed(2)} cores`;

async function main(): Promise<void> {
  await withBench('bench-fleet-rollout', async ({ rt: base, namespace, config }) => {
    console.log(`machine: ${await machine(base)}`);
    console.log(
      `nodes ${fmt.int(NODES)} in ${CHILDREN} agent processes, users ${USERS}, rollouts ${ROLLOUTS}, suspensions ${SUSPENSIONS}, heartbeat ${HEARTBEAT_MS} ms, periodic sync ${SYNC_MS} ms, state on ${STATE_ROOT}`,
    );
    // The worker's and projectors' warnings are counted, not printed, and reported at the end.
    const fleetLog = countingLogger();
    const rt: Runtime = { ...base, log: fleetLog.log };
    const stateDir = join(STATE_ROOT, `rg-bench-${namespace}`);
    await mkdir(stateDir, { recursive: true });
    const projectors = startProjectors(rt, [...PROJECTIONS.keys()].filter((name) => name !== 'fleet'));
    const fleetApply: ApplyStats = { batches: 0, events: 0, applyMs: 0 };
    const fleetProjector = new Projector({
      ...projectorDeps(rt),
      projection: {
        ...fleetProjection,
        apply: async (trx, events, ctx) => {
          const start = performance.now();
          await fleetProjection.apply(trx, events, ctx);
          fleetApply.batches++;
          fleetApply.events += events.length;
          fleetApply.applyMs += performance.now() - start;
        },
      },
    });
    const fleetProjecting = fleetProjector.run();
    const worker = await startFleetWorker(rt);
    const identity = openIdentity(rt);
    const children: Child[] = [];
    try {
      await run(rt, namespace, config.natsUrl, stateDir, worker, identity, children, fleetLog.counts, fleetApply);
    } catch (err) {
      // What the worker and projectors complained about is usually the reason.
      console.error(`fleet process log lines (warn+): ${formatCounts(fleetLog.counts())}`);
      throw err;
    } finally {
      await stopChildren(children);
      await worker.close();
      await projectors.close();
      await fleetProjector.close();
      await fleetProjecting;
      await identity.stop();
      await rm(stateDir, { recursive: true, force: true });
      // Revocations of the suspended users: the one thing this run leaves in Redis, under its own namespace.
      await rt.redis.del(`${namespace}:revoked`).catch(() => undefined);
    }
  });
}

async function run(
  rt: Runtime,
  namespace: string,
  natsUrl: string,
  stateDir: string,
  worker: Awaited<ReturnType<typeof startFleetWorker>>,
  identity: ReturnType<typeof openIdentity>,
  children: Child[],
  fleetLogs: () => Record<string, { n: number; first: string }>,
  fleetApply: ApplyStats,
): Promise<void> {
  const { fleet } = worker;
  const ids = Array.from({ length: NODES }, (_, i) => nodeId(i));

  // ---------------------------------------------------------------- set-up
  const registerSeconds = await timed(() =>
    inWindow(NODES, 32, (i) => fleet.nodes.register({ nodeId: ids[i]!, address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, labels: [] }, 'api', operator)),
  );
  console.log(`set-up: registered ${fmt.int(NODES)} nodes in ${fmt.s(registerSeconds)} s (${fmt.int(NODES / registerSeconds)}/s, 32 in flight)`);
  await fleet.profiles.create({ profileId: 'vless-1', kind: 'vless', port: FIRST_PORT, labels: [] }, operator);

  const users: string[] = [];
  const userSeconds = await timed(async () => {
    await inWindow(USERS, 4, async (i) => {
      const { userId } = await identity.accounts.register({ email: `bench-${i}-${namespace}@bench.relaygrid.test`, password: 'correct horse battery staple' }, operator);
      users.push(userId);
    });
    await grantEveryone(new Plans({ handler: fleet.deps.handler, db: rt.db }), users, operator);
  });
  // Every user must be in the configuration the rollout renders, or its node has nothing to remove on suspension.
  await untilEntitled(rt, USERS);
  console.log(`set-up: registered ${USERS} users with proxy credentials and a plan for every node in ${fmt.s(userSeconds)} s`);

  const startSeconds = await timed(async () => {
    for (let c = 0; c < CHILDREN; c++) children.push(new Child('./fleet-rollout.js', ['agents']));
    await Promise.all(
      children.map((child, c) =>
        child.request<number>('start', { natsUrl, namespace, child: c, stateDir: join(stateDir, `c${c}`), nodeIds: ids.filter((_, i) => i % CHILDREN === c) } satisfies StartArgs),
      ),
    );
  });
  const healthySeconds = await timed(() =>
    until(
      'every node to be healthy',
      async () => (await rt.db.selectFrom('fleet_nodes').select(sql<number>`count(*)::int`.as('n')).where('health', '=', 'healthy').executeTakeFirstOrThrow()).n >= NODES,
      120_000,
      100,
    ),
  );
  console.log(`set-up: ${fmt.int(NODES)} agents started in ${fmt.s(startSeconds)} s; all healthy ${fmt.s(healthySeconds)} s later`);

  // ---------------------------------------------------------------- rollouts
  const rollouts: RolloutRun[] = [];
  for (let round = 1; round <= ROLLOUTS; round++) {
    if (round > 1) await fleet.profiles.create({ profileId: `vless-${round}`, kind: 'vless', port: FIRST_PORT + round - 1, labels: [] }, operator);
    const r = await measureRollout(rt, worker, children, round, fleetApply);
    rollouts.push(r);
    console.log(
      `  rollout ${round}: ${fmt.int(r.targets)} nodes, ${r.waves.length} waves (${r.waves.map((w) => `${w.size} at ${fmt.s(w.start)}–${fmt.s(w.end)} s`).join(', ')}); ` +
        `plan() ${fmt.s(r.planSeconds)} s, last report ${fmt.s(r.lastReportSeconds)} s, all applied in the read model ${fmt.s(r.appliedSeconds)} s, completed ${fmt.s(r.completedSeconds)} s; wave start → applied p50 ${ms(r.applied.p50)} p99 ${ms(r.applied.p99)} max ${ms(r.applied.max)} ms; ` +
        `→ reported p50 ${ms(r.reported.p50)} p99 ${ms(r.reported.p99)} max ${ms(r.reported.max)} ms; append conflicts ${fmt.int(r.conflicts)}; ` +
        `fleet projection ${fmt.int(r.projection.events)} events in ${fmt.int(r.projection.batches)} transactions, ${fmt.s(r.projection.applyMs / Math.max(1, r.projection.batches))} ms in apply each (rollout row's targets + waves: ${fmt.int(r.rowKb.json)} KB of JSON, ${fmt.int(r.rowKb.stored)} KB stored)   ${coresLine(r.cores)}`,
    );
  }
  const statuses = await Promise.all(children.map((c) => c.request<ChildStatus>('status')));
  const desired = await rt.db.selectFrom('fleet_nodes').select(['id', 'desired_template']).execute();
  const desiredTemplate = new Set(desired.map((d) => d.desired_template));
  const agreeing = statuses.flatMap((s) => s.applied).filter((t) => t !== null && desiredTemplate.has(t)).length;
  if (desiredTemplate.size !== 1 || agreeing !== NODES) throw new Error(`after the rollouts: ${agreeing} of ${NODES} agents run the one desired template (${desiredTemplate.size} templates desired)`);
  console.log(`  check: all ${fmt.int(NODES)} agents run the desired template`);

  // ---------------------------------------------------------------- suspension reach vs raw fan-out
  const pushBytes = JSON.stringify({ type: 'users', template: 'f'.repeat(64), add: [], remove: Array.from({ length: ROLLOUTS }, (_, i) => ({ tag: `vless-${i + 1}`, email: users[0] })) }).length;
  const reaches: ReachRun[] = [];
  for (let round = 1; round <= SUSPENSIONS; round++) {
    const order: ReachRun['kind'][] = round % 2 === 1 ? ['raw', 'suspension'] : ['suspension', 'raw'];
    for (const kind of order) {
      const r = kind === 'raw' ? await measureRaw(rt, ids, children, round, pushBytes) : await measureSuspension(identity, children, round, users[round - 1]!);
      reaches.push(r);
      console.log(
        `  ${kind.padEnd(10)} round ${round}: reached ${fmt.int(r.reached)}/${fmt.int(NODES)} nodes  p50 ${ms(r.latency.p50)} p99 ${ms(r.latency.p99)} max ${ms(r.latency.max)} ms (first ${ms(r.latency.min)} ms)`,
      );
    }
  }

  // ---------------------------------------------------------------- figures
  console.log();
  console.log(
    table(
      ['rollout', 'nodes', 'waves', 'last report s', 'read model done s', 'applied p50 ms', 'applied p99 ms', 'applied max ms', 'conflicts', 'fleet projection txns', 'fleet cores', 'agent cores', 'pg cores'],
      rollouts.map((r) => [
        `rollout ${r.round}${r.round === 1 ? ' (first profile)' : ' (+1 profile)'}`,
        fmt.int(r.targets),
        String(r.waves.length),
        fmt.s(r.lastReportSeconds),
        fmt.s(Math.max(r.appliedSeconds, r.completedSeconds)),
        ms(r.applied.p50),
        ms(r.applied.p99),
        ms(r.applied.max),
        fmt.int(r.conflicts),
        `${fmt.int(r.projection.batches)} for ${fmt.int(r.projection.events)} events`,
        r.cores.fleet.toFixed(2),
        r.cores.agents.toFixed(2),
        r.cores.postgres.toFixed(2),
      ]),
    ),
  );
  console.log();
  console.log(
    table(
      ['reach', 'round', 'nodes reached', 'first ms', 'p50 ms', 'p99 ms', 'max ms'],
      reaches.map((r) => [
        r.kind === 'raw' ? 'raw core-NATS fan-out' : 'suspend → removeUser',
        String(r.round),
        `${fmt.int(r.reached)}/${fmt.int(NODES)}`,
        ms(r.latency.min),
        ms(r.latency.p50),
        ms(r.latency.p99),
        ms(r.latency.max),
      ]),
    ),
  );
  const slowest = rollouts.reduce((a, b) => (b.applied.p99 > a.applied.p99 ? b : a));
  console.log();
  console.log(
    `rollout to ${fmt.int(NODES)} nodes, wave start → NodeConfigApplied, worst round: p50 ${ms(slowest.applied.p50)} ms, p99 ${ms(slowest.applied.p99)} ms; plan → completed in the read model ${fmt.s(Math.max(...rollouts.map((r) => Math.max(r.appliedSeconds, r.completedSeconds))))} s at worst  (reported; no goal)`,
  );
  const worst = reaches.filter((r) => r.kind === 'suspension').reduce((a, b) => (b.latency.p99 > a.latency.p99 ? b : a));
  const rawWorst = reaches.filter((r) => r.kind === 'raw').reduce((a, b) => (b.latency.p99 > a.latency.p99 ? b : a));
  const allReached = reaches.every((r) => r.reached === NODES);
  console.log();
  console.log(
    `suspension reach p99, worst round: ${ms(worst.latency.p99)} ms = ${(worst.latency.p99 / rawWorst.latency.p99).toFixed(1)}× the raw fan-out p99 (${ms(rawWorst.latency.p99)} ms)  (goal < ${GOAL_REACH_P99_MS} ms)  ${verdict(allReached && worst.latency.p99 < GOAL_REACH_P99_MS)}`,
  );
  const last = await Promise.all(children.map((c) => c.request<ChildStatus>('status')));
  console.log(`agents: ${fmt.int(last.reduce((n, s) => n + s.syncs, 0))} syncs, ${fmt.int(last.reduce((n, s) => n + s.restarts, 0))} core restarts, ${fmt.int(last.reduce((n, s) => n + s.liveUserChanges, 0))} live user changes`);
  console.log(`agent log lines (warn+): ${formatCounts(mergeCounts(last.map((s) => s.logs)))}`);
  console.log(`fleet process log lines (warn+): ${formatCounts(fleetLogs())}`);
}

async function measureRollout(rt: Runtime, worker: Awaited<ReturnType<typeof startFleetWorker>>, children: readonly Child[], round: number, fleetApply: ApplyStats): Promise<RolloutRun> {
  const { fleet } = worker;
  await waitQuiet();
  const conflicts = fleet.deps.handler.conflicts;
  const apply0 = { ...fleetApply };
  const meter = coreMeter(children);
  const t0 = epochMs();
  const { rolloutId, targets } = await fleet.rollouts.plan({ reason: `bench round ${round}` }, operator);
  const planned = epochMs();
  let appliedAt: number | undefined;
  let status = 'running';
  let seen = '';
  await until(
    `rollout ${round} to complete`,
    async () => {
      const [row, applied] = await Promise.all([
        rt.db.selectFrom('fleet_rollouts').select(['status', 'status_reason', 'wave', 'applied', 'rejected']).where('id', '=', rolloutId).executeTakeFirst(),
        rt.db
          .selectFrom('fleet_nodes')
          .select(sql<number>`count(*)::int`.as('n'))
          .where('desired_rollout', '=', rolloutId)
          .whereRef('applied_template', '=', 'desired_template')
          .executeTakeFirstOrThrow(),
      ]);
      if (applied.n >= targets) appliedAt ??= epochMs();
      status = row?.status ?? 'running';
      seen = `${applied.n} of ${targets} nodes applied in fleet_nodes; rollout ${status}, wave ${row?.wave ?? '?'}, ${row?.applied ?? 0} applied / ${row?.rejected ?? 0} rejected reports`;
      if (status === 'halted' || status === 'aborted' || status === 'rolled_back') throw new Error(`rollout ${round} ${status}: ${row?.status_reason ?? ''}`);
      return status === 'completed' && appliedAt !== undefined;
    },
    ROLLOUT_TIMEOUT_MS,
    50,
  ).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; last seen: ${seen}`);
  });
  const done = epochMs();
  const cores = meter();

  // Per node: from its wave's start (the event) to its applied and reported times (the read model).
  const { events } = await fleet.deps.handler.store.read(fleet.deps.subject('rollout', rolloutId));
  const waveStart = new Map<string, number>();
  const waveOf = new Map<string, number>();
  const waves: { size: number; start: number; end: number }[] = [];
  for (const e of events) {
    if (e.type !== 'fleet.RolloutWaveStarted') continue;
    const d = e.data as { wave: number; nodeIds: string[]; startedAt: Date };
    waves[d.wave] = { size: d.nodeIds.length, start: d.startedAt.getTime(), end: d.startedAt.getTime() };
    for (const id of d.nodeIds) {
      waveStart.set(id, d.startedAt.getTime());
      waveOf.set(id, d.wave);
    }
  }
  const nodes = await rt.db.selectFrom('fleet_nodes').select(['id', 'applied_at']).where('desired_rollout', '=', rolloutId).execute();
  const reports = await rt.db.selectFrom('fleet_rollout_nodes').select(['node_id', 'reported_at']).where('rollout_id', '=', rolloutId).execute();
  const applied = nodes.map((n) => {
    const at = n.applied_at!.getTime();
    const w = waves[waveOf.get(n.id)!]!;
    w.end = Math.max(w.end, at);
    return at - waveStart.get(n.id)!;
  });
  const reported = reports.map((r) => r.reported_at.getTime() - waveStart.get(r.node_id)!);
  const { rows: size } = await sql<{ json: number; stored: number }>`
    select (octet_length(targets::text) + octet_length(waves::text))::int as json, (pg_column_size(targets) + pg_column_size(waves))::int as stored
    from fleet_rollouts where id = ${rolloutId}`.execute(rt.db);
  return {
    round,
    targets,
    // Event times have millisecond resolution, t0 finer: the canary's wave may seem to start a fraction of a millisecond early.
    waves: waves.map((w) => ({ size: w.size, start: Math.max(0, w.start - t0) / 1000, end: (w.end - t0) / 1000 })),
    planSeconds: (planned - t0) / 1000,
    lastReportSeconds: (Math.max(...reports.map((r) => r.reported_at.getTime())) - t0) / 1000,
    appliedSeconds: ((appliedAt ?? done) - t0) / 1000,
    completedSeconds: (done - t0) / 1000,
    applied: summary(applied),
    reported: summary(reported),
    conflicts: fleet.deps.handler.conflicts - conflicts,
    rowKb: { json: (size[0]?.json ?? 0) / 1024, stored: (size[0]?.stored ?? 0) / 1024 },
    projection: { batches: fleetApply.batches - apply0.batches, events: fleetApply.events - apply0.events, applyMs: fleetApply.applyMs - apply0.applyMs },
    cores,
  };
}

async function measureSuspension(identity: ReturnType<typeof openIdentity>, children: readonly Child[], round: number, userId: string): Promise<ReachRun> {
  await waitQuiet();
  // The children wait for their removals before the clock starts, so no request is in flight when it does.
  const waiting = Promise.all(children.map((c) => c.request<number[]>('removals', { email: userId, timeoutMs: REACH_TIMEOUT_MS })));
  const t0 = epochMs();
  await identity.admin.suspend(userId, 'bench', operator);
  const times = (await waiting).flat();
  return { kind: 'suspension', round, reached: times.length, latency: summary(times.map((t) => t - t0)) };
}

async function measureRaw(rt: Runtime, ids: readonly string[], children: readonly Child[], round: number, bytes: number): Promise<ReachRun> {
  await waitQuiet();
  const waiting = Promise.all(children.map((c) => c.request<number[]>('raw', { round, timeoutMs: REACH_TIMEOUT_MS })));
  const head = JSON.stringify({ round, pad: '' });
  const payload = JSON.stringify({ round, pad: 'x'.repeat(Math.max(0, bytes - head.length)) });
  const t0 = epochMs();
  for (const id of ids) rt.nats.nc.publish(rawSubject(rt.names, id), payload);
  await rt.nats.nc.flush();
  const times = (await waiting).flat();
  return { kind: 'raw', round, reached: times.length, latency: summary(times.map((t) => t - t0)) };
}

if (process.argv[2] === 'agents') agentsChild();
else runMain(main);
