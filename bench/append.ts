/**
 * Append throughput: events/s through the real append path against a raw
 * JetStream publish baseline, in the same run, on the same stream.
 *
 *   relaygrid: CommandHandler.handle(userDecider, subject, RegisterUser, { meta, assumeNew: true })
 *              = decide, uuidv7 event ids, Avro encode, CloudEvents headers,
 *                publish with Nats-Msg-Id + expect.lastSubjectSequence=0, ack
 *   raw:       js.publish(subject, payload) with a payload of the same byte size
 *              as the message body, on the same subject shape, no headers, no expectation
 *
 * A registration is one decision of three events (UserRegistered v3,
 * ProxyCredentialsIssued, EmailVerificationRequested), so one message: a Commit
 * carrying the three. "Events" below count appends (messages), one per
 * registration. The commands carry personal data already sealed, as the API
 * builds them (a random per-person key; sealing and the password hash are the
 * service layer's cost and happen before the clock starts).
 *
 * Both on fresh aggregates `<ns>.evt.identity.user.<uuidv7>`, into the
 * namespace's identity stream (file storage, 2 min duplicate window, sourced
 * by the audit stream), with the same window of in-flight operations.
 *
 * Env: BENCH_EVENTS (50000), BENCH_CONCURRENCY (256), BENCH_ROUNDS (3),
 *      BENCH_WARMUP (5000).
 */
import { createHash, randomBytes } from 'node:crypto';
import { encodeDecision, type EventMeta } from '../contracts/envelope.js';
import { uuidv7 } from '../contracts/ids.js';
import { requireMasterKey } from '../infra/config.js';
import { CommandHandler } from '../producers/event-store/command-handler.js';
import { EventStore } from '../producers/event-store/event-store.js';
import { seal } from '../producers/identity/crypto/sealing.js';
import { EmailIndex } from '../producers/identity/email.js';
import { newProxyCredentials } from '../producers/identity/proxy-credentials.js';
import { userDecider, type UserCommand } from '../producers/identity/user.decider.js';
import type { Runtime } from '../infra/runtime.js';
import { PASSWORD_HASH } from './identity-fill.js';
import { cpuLine, cpuSample, cpuSince, envInt, fmt, inWindow, machine, settleAudit, table, timed, verdict, waitQuiet, withBench, fastest, type CpuUse, runMain } from './support.js';

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
const VERIFICATION_TTL_MS = 48 * 3600 * 1000;

/** Fresh aggregates and their (sealed) commands, built before the clock starts. Constant-width fields keep every body the same size. */
function jobs(rt: Runtime, n: number): Job[] {
  const batch = (batchNo++).toString(36).padStart(3, '0');
  const at = new Date();
  const emails = new EmailIndex(requireMasterKey(rt.config));
  return Array.from({ length: n }, (_, i) => {
    const userId = uuidv7();
    const email = `user-${batch}-${i.toString().padStart(8, '0')}@bench.relaygrid.test`;
    // The person's data key: the append path never reads it, so it is not stored.
    const key = randomBytes(32);
    const sealFor = (text: string) => seal(key, userId, text);
    const secret = randomBytes(32).toString('base64url');
    return {
      subject: rt.names.aggregate('identity', 'user', userId),
      command: {
        type: 'RegisterUser',
        userId,
        emailHash: emails.of(email),
        emailSealed: sealFor(email),
        displayNameSealed: sealFor(`Bench User ${i.toString().padStart(8, '0')}`),
        passwordHashSealed: sealFor(PASSWORD_HASH),
        roles: ['client'],
        credentialsSealed: sealFor(JSON.stringify(newProxyCredentials(userId))),
        verification: {
          tokenHash: createHash('sha256').update(secret).digest('hex'),
          tokenSealed: sealFor(`${userId}.${secret}`),
          emailSealed: sealFor(email),
          expiresAt: new Date(at.getTime() + VERIFICATION_TTL_MS),
        },
        at,
      },
      // What the API passes for a registration (no traceparent: no OpenTelemetry SDK installed).
      meta: { source: 'relaygrid/api', actor: `user:${userId}`, correlationId: `req-${batch}-${i.toString(36)}` },
    };
  });
}

/** Size of the message body relaygrid writes for these commands (a Commit of the decided events): the raw baseline publishes this many bytes. */
function bodySize(rt: Runtime, job: Job): number {
  const events = userDecider.decide(job.command, userDecider.initialState);
  if (events.length === 0) throw new Error('RegisterUser decided nothing');
  const at = new Date();
  return encodeDecision(rt.registry, 'size', events.map((event) => ({ id: uuidv7(), event, time: at })), job.meta).body.length;
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
    console.log(`events ${fmt.int(EVENTS)} per run, concurrency ${CONCURRENCY}, rounds ${ROUNDS}, warm-up ${fmt.int(WARMUP)}, message body ${size} bytes`);
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

runMain(main);
