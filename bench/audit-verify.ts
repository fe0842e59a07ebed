/**
 * Audit verification throughput (issue 6): `replay audit verify` recomputing
 * the RFC 6962 tree from the stored bytes of the audit stream and checking
 * every signed checkpoint, against a raw read of the same stream, in the same
 * run.
 *
 *   verify:   verifyStream(rt, <NS>_AUDIT, checkpoints) from replay/audit/verify.ts:
 *             the stored messages read through an ordered consumer, each one's
 *             canonical leaf (subject, sorted headers, data) hashed, the tree
 *             folded, every checkpoint's root and the consistency proofs between
 *             consecutive checkpoints checked, and the leaves compared with the
 *             audit worker's records
 *   raw read: the same ordered-consumer read of the stream  (replay/range.ts
 *             readStream), messages counted, nothing hashed
 *
 * Not measured: filling the identity stream with BENCH_EVENTS sealed
 * registrations, the audit stream sourcing them, and the audit worker folding
 * them and signing checkpoints every BENCH_CHECKPOINT_EVERY leaves.
 *
 * Env: BENCH_EVENTS (200000), BENCH_ROUNDS (2), BENCH_CHECKPOINT_EVERY (10000),
 *      BENCH_FILL_CONCURRENCY (512).
 */
import { generateKeyPair, parseSignerKey, parseVerifierKey } from '../replay/audit/note.js';
import { checkpointsFromStream, verifyCheckpoints } from '../replay/audit/checkpoint-source.js';
import { readStream } from '../replay/range.js';
import { verifyStream } from '../replay/audit/verify.js';
import { startAuditWorker } from '../workers/audit/audit-worker.js';
import { fillIdentityStream } from './identity-fill.js';
import { cpuLine, cpuSample, cpuSince, envInt, fmt, machine, table, timed, until, verdict, waitQuiet, withBench, type CpuUse } from './support.js';

const EVENTS = envInt('BENCH_EVENTS', 200_000);
const ROUNDS = envInt('BENCH_ROUNDS', 2);
const CHECKPOINT_EVERY = envInt('BENCH_CHECKPOINT_EVERY', 10_000);
const FILL_CONCURRENCY = envInt('BENCH_FILL_CONCURRENCY', 512);
/** Issue 6: verify at least this share of the raw read rate. */
const GOAL_RATIO = 0.3;

interface Run {
  kind: 'raw' | 'verify';
  seconds: number;
  cpu: CpuUse;
}

async function main(): Promise<void> {
  await withBench('bench-audit-verify', async ({ rt }) => {
    console.log(await machine(rt));
    console.log(`events ${fmt.int(EVENTS)}, checkpoint every ${fmt.int(CHECKPOINT_EVERY)} leaves, rounds ${ROUNDS}`);
    await fillIdentityStream(rt, EVENTS, FILL_CONCURRENCY);
    const stream = rt.names.auditStream;
    const leaves = (await rt.nats.jsm.streams.info(stream)).state.messages;

    const keys = generateKeyPair('bench.relaygrid/audit');
    const worker = await startAuditWorker(rt, { signer: parseSignerKey(keys.signer), checkpointDir: `/tmp/${rt.names.namespace}-checkpoints`, checkpointEvery: CHECKPOINT_EVERY, checkpointSeconds: 3600 });
    try {
      await until('the audit worker to fold every leaf', () => worker.status().treeSize >= leaves, 30 * 60_000, 100);
      await worker.checkpoint();
    } finally {
      await worker.close();
    }
    const checkpoints = verifyCheckpoints(await checkpointsFromStream(rt), parseVerifierKey(keys.verifier));
    console.log(`  audit tree: ${fmt.int(leaves)} leaves, ${checkpoints.length} signed checkpoints (not measured)`);

    const runs: Run[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const kind of ['raw', 'verify'] as const) {
        await waitQuiet();
        const cpu0 = cpuSample();
        let counted = 0;
        const seconds = await timed(async () => {
          if (kind === 'raw') counted = await readStream(rt, stream, () => undefined);
          else counted = (await verifyStream(rt, stream, checkpoints)).leaves;
        });
        if (counted !== leaves) throw new Error(`${kind} saw ${counted} leaves, expected ${leaves}`);
        const run: Run = { kind, seconds, cpu: cpuSince(cpu0, leaves) };
        runs.push(run);
        console.log(`  ${kind.padEnd(6)} round ${round}  ${fmt.int(leaves)} leaves  ${seconds.toFixed(2)} s  ${fmt.int(leaves / seconds)} leaves/s  ${cpuLine(run.cpu)}`);
      }
    }
    const best = (kind: Run['kind']) => runs.filter((r) => r.kind === kind).sort((a, b) => a.seconds - b.seconds)[0]!;
    const raw = best('raw');
    const verify = best('verify');
    console.log();
    console.log(
      table(
        ['path', 'leaves', 'seconds', 'leaves/s', 'bench CPU µs/leaf', 'nats-server CPU µs/leaf'],
        [raw, verify].map((r) => [
          r.kind === 'raw' ? 'raw ordered-consumer read' : 'replay audit verify',
          fmt.int(leaves),
          r.seconds.toFixed(2),
          fmt.int(leaves / r.seconds),
          r.cpu.perEvent.self.toFixed(1),
          r.cpu.perEvent.nats.toFixed(1),
        ]),
      ),
    );
    const ratio = raw.seconds / verify.seconds;
    console.log(`\nratio verify / raw read: ${fmt.pct(ratio)}  (goal >= ${fmt.pct(GOAL_RATIO)})  ${verdict(ratio >= GOAL_RATIO)}`);
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
