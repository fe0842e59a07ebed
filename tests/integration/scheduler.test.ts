/**
 * "A scheduled command fires once with two workers running and one killed mid-fire."
 *
 * Forty keys fall due over forty minutes of a controlled clock. Firing key K is a command to a
 * tiny decider (below) that appends one event for K and refuses a second; the due table is a
 * stand-in read model that the fire marks done after the command. Two schedulers of the same
 * name run at once. The leader dies in the middle of a fire — after its append, before marking
 * done: its lock's Postgres session is terminated (what a killed process's is) and every fire it
 * had started or starts later hangs forever. The standby takes over and fires the same item again,
 * which the decider refuses. One more fire throws after appending and is retried. Every key ends
 * with exactly one event, none recorded before its due time, and keys not yet due are never fired.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../contracts/envelope.js';
import { createLogger } from '../../infra/logger.js';
import { Metrics } from '../../infra/metrics.js';
import { DomainError, type Decider } from '../../producers/decider.js';
import { CommandHandler } from '../../producers/event-store/command-handler.js';
import { EventStore } from '../../producers/event-store/event-store.js';
import { ManualClock } from '../../workers/scheduler/clock.js';
import { runScheduler, type Scheduler } from '../../workers/scheduler/scheduler.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';

// The test-only aggregate "one scheduled occurrence": Fire appends one event (any catalogue type carries it: NodeDrained's
// nodeId is the key, `by` the worker, drainedAt the clock's time at firing) and refuses a second.
interface Fire {
  key: string;
  by: string;
  at: Date;
}
const occurrence: Decider<{ fired: boolean }, Fire, 'fleet.NodeDrained'> = {
  initialState: { fired: false },
  decide: (command, state) => {
    if (state.fired) throw new DomainError('already_fired', `${command.key} was already fired`);
    return [{ type: 'fleet.NodeDrained', data: { nodeId: command.key, by: command.by, drainedAt: command.at } }];
  },
  evolve: () => ({ fired: true }),
};

interface DueItem {
  key: string;
  due_at: Date;
}

const T0 = new Date('2026-03-29T00:30:00Z');
const KEYS = 40;
const CRASH_KEY = 'k05';
const FLAKY_KEY = 'k20';
const CONCURRENCY = 4;
const log = createLogger(process.env['LOG_LEVEL'] ?? 'silent');
const meta = { source: 'relaygrid/test', actor: 'system:scheduler-test' };

describe('scheduled commands', () => {
  let env: Isolated;
  let store: EventStore;
  const schedulers: Scheduler[] = [];
  /** Fires of the dead worker wait on this forever; released only to let the test close it. */
  let releaseTheDead: (reason: Error) => void = () => undefined;
  const theDead = new Promise<never>((_, reject) => (releaseTheDead = reject));
  theDead.catch(() => undefined);

  beforeAll(async () => {
    env = await isolated();
    store = new EventStore(env.rt.nats, env.rt.names, env.rt.registry);
    await sql`create table due_items (key text primary key, due_at timestamptz not null, done_at timestamptz)`.execute(env.rt.db);
  });
  afterAll(async () => {
    releaseTheDead(new Error('test over'));
    await Promise.all(schedulers.map((s) => s.close()));
    await env?.cleanup();
  });

  it('every due key ends with exactly one event, none early, with a leader killed mid-fire and a fire that throws after appending', async () => {
    const due = Array.from({ length: KEYS }, (_, i) => ({ key: `k${String(i + 1).padStart(2, '0')}`, dueAt: new Date(T0.getTime() + (i + 1) * 60_000) }));
    for (const item of due) await sql`insert into due_items (key, due_at) values (${item.key}, ${item.dueAt})`.execute(env.rt.db);
    const dueAtOf = new Map(due.map((item) => [item.key, item.dueAt.getTime()]));
    const clock = new ManualClock(T0);
    const subject = (key: string) => env.rt.names.aggregate('usage', 'schedtest', key);

    let dead = false;
    let flakyThrown = false;
    let refusals = 0;
    const running = { a: 0, b: 0 };
    let maxRunning = 0;
    const metrics = { a: new Metrics({ defaultMetrics: false }), b: new Metrics({ defaultMetrics: false }) };

    const scheduler = (worker: 'a' | 'b') => {
      // Each worker has its own handler (its own state cache), as separate processes would.
      const handler = new CommandHandler(store);
      return runScheduler<DueItem>({
        name: 'test-occurrences',
        databaseUrl: env.config.databaseUrl,
        clock,
        due: async (now, limit) =>
          (await sql<DueItem>`select key, due_at from due_items where done_at is null and due_at <= ${now} order by due_at limit ${limit}`.execute(env.rt.db)).rows,
        keyOf: (item) => item.key,
        dueAtOf: (item) => item.due_at,
        fire: async (item) => {
          if (worker === 'a' && dead) return theDead;
          // Per worker: a leader killed mid-fire still has fires in flight while the standby takes over.
          running[worker]++;
          maxRunning = Math.max(maxRunning, running[worker]);
          try {
            try {
              await handler.handle(occurrence, subject(item.key), { key: item.key, by: worker, at: clock.now() }, { meta });
            } catch (err) {
              // A second firing of the same key: done already, which is what the scheduler needs to hear.
              if (!(err instanceof DomainError && err.code === 'already_fired')) throw err;
              refusals++;
            }
            if (worker === 'a' && item.key === CRASH_KEY) {
              // Killed between its append and marking done: the lock's session goes with the process.
              dead = true;
              await sql`select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())`.execute(env.rt.db);
              return theDead;
            }
            if (item.key === FLAKY_KEY && !flakyThrown) {
              flakyThrown = true;
              throw new Error('connection reset after the append');
            }
            await sql`update due_items set done_at = now() where key = ${item.key}`.execute(env.rt.db);
          } finally {
            running[worker]--;
          }
        },
        log: log.child({ worker }),
        metrics: metrics[worker],
        pollMs: 50,
        standbyPollMs: 50,
        concurrency: CONCURRENCY,
        batchSize: 10,
      });
    };
    // Every key's aggregate read back from the log (a key never fired reads as no events).
    const events = async () => (await Promise.all(due.map(async (item) => (await store.read(subject(item.key))).events))).flat();
    const count = async (done: boolean) =>
      Number((await sql<{ n: string }>`select count(*) as n from due_items where (done_at is not null) = ${done}`.execute(env.rt.db)).rows[0]?.n);
    const gauge = async (m: Metrics, name: 'schedulerActive' | 'schedulerLag') => (await m[name].get()).values[0]?.value;

    // given worker a leading and worker b standing by
    const a = scheduler('a');
    schedulers.push(a);
    await eventually(() => a.leading);
    const b = scheduler('b');
    schedulers.push(b);
    await new Promise((r) => setTimeout(r, 200));
    expect([a.leading, b.leading]).toEqual([true, false]);
    expect(await gauge(metrics.b, 'schedulerActive')).toBe(0);

    // when nothing is due yet, nothing fires
    expect(await events()).toHaveLength(0);

    // when the clock reaches the 10th due time, a fires, dies at k05, and b takes over
    clock.set(new Date(T0.getTime() + 10 * 60_000));
    await eventually(async () => (await events()).length === 10 && b.leading && (await count(true)) === 10);
    expect(dead).toBe(true);
    // keys due later were not fired early
    expect((await events()).map((e) => e.type === 'fleet.NodeDrained' && e.data.nodeId).sort()).toEqual(due.slice(0, 10).map((item) => item.key));

    // when the clock moves on through the remaining due times, step by step
    for (let minute = 11; minute <= KEYS; minute += 7) clock.set(new Date(T0.getTime() + minute * 60_000));
    clock.set(new Date(T0.getTime() + KEYS * 60_000));
    await eventually(async () => (await count(false)) === 0);

    // then every key has exactly one event, none recorded before its due time
    const all = await events();
    const byKey = new Map<string, DomainEvent<'fleet.NodeDrained'>['data'][]>();
    for (const event of all) if (event.type === 'fleet.NodeDrained') byKey.set(event.data.nodeId, [...(byKey.get(event.data.nodeId) ?? []), event.data]);
    expect([...byKey.keys()].sort()).toEqual(due.map((item) => item.key));
    for (const [key, fired] of byKey) {
      expect(fired, key).toHaveLength(1);
      expect(fired[0]!.drainedAt.getTime(), key).toBeGreaterThanOrEqual(dueAtOf.get(key)!);
    }
    // the crashed fire was a's append, fired again by b and refused; the flaky one was retried and refused
    expect(byKey.get(CRASH_KEY)?.[0]?.by).toBe('a');
    expect(flakyThrown).toBe(true);
    expect(refusals).toBeGreaterThanOrEqual(2);
    expect(maxRunning).toBeLessThanOrEqual(CONCURRENCY);
    // and b's metrics tell the story: leading, a failure counted, nothing due any more
    expect(await gauge(metrics.b, 'schedulerActive')).toBe(1);
    expect((await metrics.b.schedulerFailed.get()).values[0]?.value).toBe(1);
    expect((await metrics.b.schedulerFired.get()).values[0]?.value).toBeGreaterThanOrEqual(30);
    await eventually(async () => (await gauge(metrics.b, 'schedulerLag')) === 0);
  });
});
