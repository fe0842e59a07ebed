/**
 * `replay audit verify`: recomputes the tree from the bytes stored in a stream
 * and holds it against signed checkpoints (tree-check.ts), with the audit
 * worker's records in Postgres to name the first bad leaf.
 */
import type { Runtime } from '../../infra/runtime.js';
import { Progress } from '../progress.js';
import type { VerifiedCheckpoint } from './checkpoint-source.js';
import { deliveredLeafHash } from './leaf.js';
import { readRange, resolveRange } from '../range.js';
import { RecordedLeaves } from './recorded-leaves.js';
import { TreeCheck, type TreeCheckReport } from './tree-check.js';

export interface VerifyReport extends TreeCheckReport {
  stream: string;
}

/** Runs `fn` with a progress line on stderr; a finding goes on its own line, not after a half-drawn bar. */
export async function withProgress<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (process.stderr.isTTY) process.stderr.write('\r\u001b[K');
    throw err;
  }
}

/** The summary line of a verify that passed. */
export function verifiedSummary(report: TreeCheckReport): string {
  const { latest } = report;
  return `${report.checkpoints} checkpoints verified (latest: size ${latest.size}, root ${latest.root.toString('base64')}), ${report.consistencyProofs} consistency proofs, ${report.unsigned} leaves after the latest checkpoint`;
}

export function verifyStream(rt: Runtime, stream: string, checkpoints: readonly VerifiedCheckpoint[]): Promise<VerifyReport> {
  return withProgress(() => verify(rt, stream, checkpoints));
}

async function verify(rt: Runtime, stream: string, checkpoints: readonly VerifiedCheckpoint[]): Promise<VerifyReport> {
  const range = await resolveRange(rt, stream);
  const records = await RecordedLeaves.open(rt.db, rt.names.auditStream);
  const check = new TreeCheck({ log: stream, records: `the audit worker's records of ${rt.names.auditStream}`, container: 'the stream' }, checkpoints, records?.size ?? 0);
  const progress = new Progress(`audit verify ${stream}`, Math.max(0, range.to - range.from + 1));

  // Synchronous per message: a promise only when the next chunk of records must be read.
  await readRange(rt.nats, range, (msg) => {
    const index = check.size;
    const hash = deliveredLeafHash(msg);
    const add = (recorded: Buffer | undefined) => {
      check.add(hash, msg.seq, recorded);
      progress.add();
    };
    if (!records || index >= records.size) return add(undefined);
    const recorded = records.get(index);
    if (recorded) return add(recorded);
    return records.load(index).then(add);
  });
  const report = await check.end((index) => records!.at(index));
  progress.finish(verifiedSummary(report));
  return { stream, ...report };
}
