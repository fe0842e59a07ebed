/**
 * `replay audit export`: the audit stream, byte for byte, into an export file
 * (export-file.ts) that `verify --file` checks with no NATS and no database.
 *
 * A consistent range: leaf 0 up to the stream's last sequence when the
 * export starts (or `--to`), whatever is appended meanwhile. Streamed: one
 * message and one chunk of the worker's records in memory at a time, the
 * file written with backpressure, progress on stderr. Each record carries
 * the worker's recorded leaf hash, which the verifier uses to name the first
 * bad leaf; what the stream holds is written as stored, even where it
 * differs from those records: finding that is the verifier's job.
 *
 * The file appears under its name only once complete (written beside it,
 * then renamed), so a cut-off export is never mistaken for a finished one.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { Runtime } from '../../infra/runtime.js';
import { rawHeaderBlock } from '../../infra/nats/raw-headers.js';
import { Progress } from '../progress.js';
import { readRange, ReplayArgumentError, resolveRange } from '../range.js';
import { AuditFailedError } from './errors.js';
import { headerLine, missingLine, recordLine, trailerLine } from './export-file.js';
import { RecordedLeaves } from './recorded-leaves.js';
import { withProgress } from './verify.js';

export interface ExportReport {
  stream: string;
  leaves: number;
  records: number;
  recorded: number;
  missing: number;
  bytes: number;
}

export function exportAudit(rt: Runtime, out: string, to?: number): Promise<ExportReport> {
  return withProgress(() => writeExport(rt, out, to));
}

async function writeExport(rt: Runtime, out: string, to: number | undefined): Promise<ExportReport> {
  const stream = rt.names.auditStream;
  const range = await resolveRange(rt, stream, undefined, to === undefined ? undefined : { seq: to });
  // Leaf i is message i + 1: a stream that lost its first messages has no leaf 0 to start from.
  if (range.from !== 1 && range.from <= range.to) throw new AuditFailedError(`${stream} starts at seq ${range.from}, not 1: the leaves before it are gone`);
  const leaves = Math.max(0, range.to);
  const records = await RecordedLeaves.open(rt.db, stream);
  const recorded = Math.min(records?.size ?? 0, leaves);

  const tmp = `${out}.${process.pid}.partial`;
  const file = createWriteStream(tmp, { flags: 'wx' });
  const opened = once(file, 'open').catch((err: NodeJS.ErrnoException) => {
    throw new ReplayArgumentError(`--out: cannot write ${tmp} (${err.code ?? err.message})`);
  });
  await opened;
  const write = (line: string): Promise<void> | undefined => (file.write(line) ? undefined : once(file, 'drain').then(() => undefined));
  const progress = new Progress(`audit export ${stream}`, leaves, 'leaves');
  let count = 0;
  try {
    await write(headerLine({ stream, leaves, recorded, exportedAt: new Date().toISOString() }));
    // Synchronous per message unless the file asks to wait or the next chunk of records must be read.
    await readRange(rt.nats, range, (msg) => {
      const leaf = count++;
      const headers = rawHeaderBlock(msg);
      if (!headers) throw new Error('this nats.js does not expose the stored header block: the export would not be byte-exact');
      const line = (r: Buffer | undefined) => {
        progress.add();
        return write(recordLine({ leaf, seq: msg.seq, subject: msg.subject, headers, body: msg.data, ...(r ? { recorded: r } : {}) }));
      };
      if (leaf >= recorded) return line(undefined);
      const r = records!.get(leaf);
      return r ? line(r) : records!.load(leaf).then(line);
    });
    // Leaves the worker recorded but the stream no longer delivers (a gap): the verifier locates them with these.
    for (let leaf = count; leaf < recorded; leaf++) await write(missingLine({ leaf, recorded: await records!.at(leaf) }));
    const missing = Math.max(0, recorded - count);
    await write(trailerLine({ records: count, missing }));
    file.end();
    await once(file, 'finish');
    await rename(tmp, out);
    const report = { stream, leaves, records: count, recorded, missing, bytes: file.bytesWritten };
    progress.finish(`${leaves} leaves (seq 1..${leaves}), ${recorded} with the worker's records, ${report.bytes.toLocaleString('en')} bytes written to ${out}`, { count, unit: 'leaves' });
    return report;
  } catch (err) {
    file.destroy();
    await rm(tmp, { force: true });
    throw err;
  }
}
