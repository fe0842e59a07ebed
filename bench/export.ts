/**
 * Export throughput: `replay export` to NDJSON and to Avro container files
 * against a raw ordered-consumer read of the same stream, in the same run.
 *
 *   raw:    an ordered consumer over the whole stream (the same pull batch as the
 *           export), touching each message's data, no headers parsed, no decode,
 *           nothing written
 *   ndjson: exportRange(--format ndjson) over the whole stream: resolve the range,
 *           load the schema bucket, read through readRange, CloudEvents headers,
 *           Avro decode with the writer schema, JSON line, buffered file writes
 *   avro:   exportRange(--format avro): the same read and decode, then avsc's
 *           BlockEncoder (null codec) into one container file per event type
 *
 * The identity stream is pre-filled (not measured) with BENCH_EVENTS messages
 * through EventStore.append: four in five are UserRegistered v3 with sealed
 * personal data of the API's sizes, one in five RoleGranted, each one event,
 * so messages and events count the same. Output goes to a temporary directory
 * on the local disk and is removed after each run.
 *
 * Env: BENCH_EVENTS (100000), BENCH_ROUNDS (3), BENCH_FILL_CONCURRENCY (512).
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DomainEvent } from '../contracts/envelope.js';
import { uuidv7 } from '../contracts/ids.js';
import type { Runtime } from '../infra/runtime.js';
import { requireMasterKey } from '../infra/config.js';
import { EmailIndex } from '../producers/identity/email.js';
import { appendUsers, sealedRegistration } from './identity-fill.js';
import { EXPORT_BATCH, exportRange } from '../replay/export/export.js';
import type { ExportFormat } from '../replay/export/args.js';
import { cpuLine, cpuSample, cpuSince, envInt, fastest, fmt, machine, settleAudit, table, timed, verdict, waitQuiet, withBench, type CpuUse, runMain } from './support.js';

const EVENTS = envInt('BENCH_EVENTS', 100_000);
const ROUNDS = envInt('BENCH_ROUNDS', 3);
const FILL_CONCURRENCY = envInt('BENCH_FILL_CONCURRENCY', 512);
/** Each export format must reach this share of the raw read rate. */
const GOAL_RATIO = 0.5;

type Kind = 'raw' | ExportFormat;

interface Run {
  kind: Kind;
  round: number;
  events: number;
  seconds: number;
  bytes: number;
  cpu: CpuUse;
}

/** Every fifth event a role grant, the rest registrations: two event types, so Avro writes two files. */
function event(emails: EmailIndex, i: number, userId: string, at: Date): DomainEvent {
  if (i % 5 === 4) return { type: 'identity.RoleGranted', data: { userId, role: 'analyst', grantedAt: at } };
  const row = { id: userId, email: `user-${i.toString().padStart(8, '0')}@bench.relaygrid.test`, display_name: i % 3 === 0 ? null : `Bench User ${i}`, roles: ['client'], registered_at: at };
  return sealedRegistration(emails, randomBytes(32), row);
}

function fill(rt: Runtime): Promise<void> {
  const emails = new EmailIndex(requireMasterKey(rt.config));
  return appendUsers(rt, EVENTS, FILL_CONCURRENCY, (i) => {
    const userId = uuidv7();
    const at = new Date();
    return Promise.resolve({ userId, event: event(emails, i, userId, at), at });
  });
}

/** An ordered consumer over the stream, as readRange opens it, doing nothing with the messages but look at their size. */
async function rawRead(rt: Runtime, stream: string, last: number): Promise<{ events: number; bytes: number }> {
  const consumer = await rt.nats.js.consumers.get(stream, { opt_start_seq: 1 });
  const messages = await consumer.consume({ max_messages: EXPORT_BATCH });
  let events = 0;
  let bytes = 0;
  try {
    for await (const msg of messages) {
      events++;
      bytes += msg.data.length;
      if (msg.seq >= last) break;
    }
  } finally {
    await messages.close();
  }
  return { events, bytes };
}

async function sizeOf(path: string): Promise<number> {
  const s = await stat(path);
  if (!s.isDirectory()) return s.size;
  let total = 0;
  for (const name of await readdir(path)) total += (await stat(join(path, name))).size;
  return total;
}

async function main(): Promise<void> {
  await withBench('bench-export', async ({ rt }) => {
    console.log(`machine: ${await machine(rt)}`);
    console.log(`events ${fmt.int(EVENTS)}, rounds ${ROUNDS}, pull batch ${EXPORT_BATCH}`);
    const stream = rt.names.stream('identity');

    console.log(`filling ${stream} (not measured)`);
    const fillSeconds = await timed(async () => {
      await fill(rt);
      await settleAudit(rt);
    });
    const { state } = await rt.nats.jsm.streams.info(stream);
    if (state.messages !== EVENTS) throw new Error(`expected ${EVENTS} messages in ${stream}, found ${state.messages}`);
    console.log(`  filled ${fmt.int(EVENTS)} events in ${fmt.s(fillSeconds)} s (${fmt.int(EVENTS / fillSeconds)} events/s, audit stream caught up); ${fmt.int(state.bytes / EVENTS)} bytes/message stored`);

    const dir = await mkdtemp(join(tmpdir(), 'rg-bench-export-'));
    const runs: Run[] = [];
    const once = async (kind: Kind, round: number) => {
      const out = join(dir, kind === 'avro' ? 'export' : 'export.ndjson');
      await waitQuiet();
      const start = cpuSample();
      let events = 0;
      let bytes = 0;
      const seconds = await timed(async () => {
        if (kind === 'raw') {
          ({ events, bytes } = await rawRead(rt, stream, state.last_seq));
        } else {
          events = (await exportRange(rt, { stream, types: [], format: kind, out })).exported;
        }
      });
      const cpu = cpuSince(start, events);
      if (kind !== 'raw') {
        bytes = await sizeOf(out);
        await rm(out, { recursive: true, force: true });
      }
      if (events !== EVENTS) throw new Error(`${kind} round ${round}: expected ${EVENTS} events, got ${events}`);
      runs.push({ kind, round, events, seconds, bytes, cpu });
      console.log(`  ${kind.padEnd(6)} round ${round}  ${fmt.int(events).padStart(9)} events  ${fmt.s(seconds).padStart(6)} s  ${fmt.int(events / seconds).padStart(8)} events/s   ${cpuLine(cpu)}`);
    };
    try {
      console.log('measured (rotating order, best of each kind is kept)');
      const kinds: Kind[] = ['raw', 'ndjson', 'avro'];
      for (let r = 1; r <= ROUNDS; r++) {
        for (let k = 0; k < kinds.length; k++) await once(kinds[(k + r - 1) % kinds.length]!, r);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    const raw = fastest(runs, 'raw');
    const rawRate = raw.events / raw.seconds;
    const label: Record<Kind, string> = { raw: 'raw ordered-consumer read', ndjson: 'replay export --format ndjson', avro: 'replay export --format avro' };
    const best = (['raw', 'ndjson', 'avro'] as const).map((k) => fastest(runs, k));
    console.log();
    console.log(
      table(
        ['path', 'events', 'seconds', 'events/s', 'of raw', 'output', 'bench CPU µs/event', 'nats-server CPU µs/event'],
        best.map((r) => [
          label[r.kind],
          fmt.int(r.events),
          fmt.s(r.seconds),
          fmt.int(r.events / r.seconds),
          fmt.pct(r.events / r.seconds / rawRate),
          r.kind === 'raw' ? `${(r.bytes / 1e6).toFixed(1)} MB read` : `${(r.bytes / 1e6).toFixed(1)} MB`,
          r.cpu.perEvent.self.toFixed(1),
          r.cpu.perEvent.nats.toFixed(1),
        ]),
      ),
    );
    console.log();
    for (const r of best.slice(1)) {
      const ratio = r.events / r.seconds / rawRate;
      console.log(`ratio ${r.kind} export / raw read: ${fmt.pct(ratio)}  (goal >= ${fmt.pct(GOAL_RATIO)})  ${verdict(ratio >= GOAL_RATIO)}`);
    }
  });
}

runMain(main);
