/**
 * Append throughput: events/s through the real append path against a raw
 * JetStream publish baseline, in the same run, on the same stream.
 *
 *   relaygrid: CommandHandler.handle(userDecider, subject, RegisterUser, { meta, assumeNew: true })
 *              = decide, uuidv7 event id, Avro encode, CloudEvents headers,
 *                publish with Nats-Msg-Id + expect.lastSubjectSequence=0, ack
 *   raw:       js.publish(subject, payload) with a payload of the same byte size
 *              as the Avro body, on the same subject shape, no headers, no expectation
 *
 * Both on fresh aggregates `<ns>.evt.identity.user.<uuidv7>`, into the
 * namespace's identity stream (file storage, 2 min duplicate window, sourced
 * by the audit stream), with the same window of in-flight operations.
 *
 * Env: BENCH_EVENTS (50000), BENCH_CONCURRENCY (256), BENCH_ROUNDS (3),
 *      BENCH_WARMUP (5000).
 */
import { randomBytes } from 'node:crypto';
import type { EventMeta } from '../contracts/envelope.js';
import { uuidv7 } from '../contracts/ids.js';
import { CommandHandler } from '../producers/event-store/command-handler.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { userDecider, type UserCommand } from '../producers/identity/user.decider.js';
import type { Runtime } from '../infra/runtime.js';
import { cpuLine, cpuSample, cpuSince, envInt, fmt, inWindow, machine, settleAudit, table, timed, verdict, waitQuiet, withBench, fastest, type CpuUse } from './support.js';

const EVENTS = envInt('BENCH_EVENTS', 50_000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 256);
const ROUNDS = envInt('BENCH_ROUNDS', 3);
const WARMUP = envInt('BENCH_WARMUP', 5_000);
/** Relaygrid appends must reach this share of raw JetStream publish throughput. */
const GOAL_RATIO = 0.7;

type Kind = 'raw' | 'relaygrid';

interface Job {
  subject: string;
  command: UserCommand;
  meta: EventMeta;
}

interface Run {
  kind: Kind;
  round: string;
  events: number;
  seconds: number;
  bytesPerMsg: number;
  cpu: CpuUse;
}

let batchNo = 0;

/** Fresh aggregates and their commands, built before the clock starts. Constant-width fields keep every body the same size. */
function jobs(rt: Runtime, n: number): Job[] {
  const batch = (batchNo++).toString(36).padStart(3, '0');
  const at = new Date();
  return Array.from({ length: n }, (_, i) => {
    const userId = uuidv7();
    const email = `user-${batch}-${i.toString().padStart(8, '0')}@bench.relaygrid.test`;
    return {
      subject: rt.names.aggregate('identity', 'user', userId),
      command: { type: 'RegisterUser', userId, email, displayName: `Bench User ${i.toString().padStart(8, '0')}`, at },
      // What the API passes for a registration (no traceparent: no OpenTelemetry SDK installed).
      meta: { source: 'relaygrid/api', actor: `user:${userId}`, correlationId: `req-${batch}-${i.toString(36)}` },
    };
  });
}

/** Size of the Avro body relaygrid writes for these commands: the raw baseline publishes this many bytes. */
function bodySize(rt: Runtime, job: Job): number {
  const [event] = userDecider.decide(job.command, userDecider.initialState);
  if (!event) throw new Error('RegisterUser decided nothing');
  return rt.registry.encode(event.type, event.data).bytes.length;
}

async function streamState(rt: Runtime): Promise<{ messages: number; bytes: number }> {
  const { state } = await rt.nats.jsm.streams.info(rt.names.stream('identity'));
  return { messages: state.messages, bytes: state.bytes };
}

async function main(): Promise<void> {
  await withBench('bench-append', async ({ rt }) => {
    const store = new EventStore(rt.nats, rt.names, rt.registry);
    const handler = new CommandHandler(store);
    const size = bodySize(rt, jobs(rt, 1)[0]!);
    const payload = randomBytes(size);

    const once = async (kind: Kind, n: number, round: string): Promise<Run> => {
      const work = jobs(rt, n);
      await settleAudit(rt);
      await waitQuiet();
      const before = await streamState(rt);
      let duplicates = 0;
      const cpuStart = cpuSample();
      const seconds = await timed(() =>
        kind === 'raw'
          ? inWindow(n, CONCURRENCY, async (i) => {
              await rt.nats.js.publish(work[i]!.subject, payload);
            })
          : inWindow(n, CONCURRENCY, async (i) => {
              const job = work[i]!;
              const result = await handler.handle(userDecider, job.subject, job.command, { meta: job.meta, assumeNew: true });
              if (result.duplicate) duplicates++;
            }),
      );
      const cpu = cpuSince(cpuStart, n);
      const after = await streamState(rt);
      const stored = after.messages - before.messages;
      if (stored !== n) throw new Error(`${kind} ${round}: expected ${n} new messages in the stream, found ${stored}`);
      if (duplicates > 0 || handler.conflicts > 0) throw new Error(`${kind} ${round}: ${duplicates} duplicates, ${handler.conflicts} conflicts on fresh aggregates`);
      const run = { kind, round, events: n, seconds, bytesPerMsg: (after.bytes - before.bytes) / n, cpu };
      console.log(
        `  ${kind.padEnd(9)} ${round.padEnd(7)} ${fmt.int(n).padStart(9)} events  ${fmt.s(seconds).padStart(7)} s  ${fmt.int(n / seconds).padStart(7)} events/s   ${cpuLine(cpu)}`,
      );
      return run;
    };

    console.log(`machine: ${await machine(rt)}`);
    console.log(`events ${fmt.int(EVENTS)} per run, concurrency ${CONCURRENCY}, rounds ${ROUNDS}, warm-up ${fmt.int(WARMUP)}, Avro body ${size} bytes`);
    console.log('warm-up');
    await once('raw', WARMUP, 'warm-up');
    await once('relaygrid', WARMUP, 'warm-up');

    console.log('measured (alternating, best of each kind is kept)');
    const runs: Run[] = [];
    for (let r = 1; r <= ROUNDS; r++) {
      // Alternate which goes first so neither always runs on a fuller stream.
      const order: Kind[] = r % 2 === 1 ? ['raw', 'relaygrid'] : ['relaygrid', 'raw'];
      for (const kind of order) runs.push(await once(kind, EVENTS, `round ${r}`));
    }
    await settleAudit(rt);

    const raw = fastest(runs, 'raw');
    const rg = fastest(runs, 'relaygrid');
    const rawRate = raw.events / raw.seconds;
    const rgRate = rg.events / rg.seconds;
    const ratio = rgRate / rawRate;

    console.log();
    console.log(
      table(
        ['path', 'events', 'seconds', 'events/s', 'stored bytes/msg', 'bench CPU µs/event', 'nats-server CPU µs/event'],
        [raw, rg].map((r) => [
          r.kind === 'raw' ? 'raw js.publish' : 'relaygrid CommandHandler.handle',
          fmt.int(r.events),
          fmt.s(r.seconds),
          fmt.int(r.events / r.seconds),
          fmt.int(r.bytesPerMsg),
          r.cpu.perEvent.self.toFixed(1),
          r.cpu.perEvent.nats.toFixed(1),
        ]),
      ),
    );
    console.log();
    console.log(`ratio relaygrid / raw: ${fmt.pct(ratio)}  (goal >= ${fmt.pct(GOAL_RATIO)})  ${verdict(ratio >= GOAL_RATIO)}`);
  });
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
