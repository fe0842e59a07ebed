/**
 * `replay audit verify --file <export>`: the same check as `verify`
 * (tree-check.ts), on an export file instead of the stream, with no NATS and
 * no database: the leaf hashes are recomputed from the stored bytes the file
 * carries, the worker's records come from the file too.
 *
 * What the file cannot vouch for by itself it does not get to: its records
 * name the first bad leaf only once their own tree reproduces a signed root.
 * Its `leaf` numbers are checked against each record's position, so a record
 * removed, inserted or moved as a whole line is named where it happens; its
 * header's leaf count decides which checkpoints it must match, and the
 * summary says how many checkpoints lie beyond it.
 */
import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import { Progress } from '../progress.js';
import { ReplayArgumentError } from '../range.js';
import type { VerifiedCheckpoint } from './checkpoint-source.js';
import { AuditFailedError, ExportFormatError } from './errors.js';
import { parseHeader, parseLine, type ExportHeader } from './export-file.js';
import { rawLeafHash } from './leaf.js';
import { TreeCheck, type TreeCheckReport } from './tree-check.js';
import { verifiedSummary, withProgress } from './verify.js';

export interface FileVerifyReport extends TreeCheckReport {
  header: ExportHeader;
  /** Checkpoints of more leaves than the export covers, not checked. */
  beyond: number;
}

export function verifyExportFile(path: string, checkpoints: readonly VerifiedCheckpoint[]): Promise<FileVerifyReport> {
  return withProgress(() => verifyFile(path, checkpoints));
}

async function* linesOf(path: string): AsyncGenerator<string> {
  const input = createReadStream(path);
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  try {
    await opened;
  } catch (err) {
    throw new ReplayArgumentError(`--file: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    yield* lines;
  } finally {
    lines.close();
    input.destroy();
  }
}

async function verifyFile(path: string, checkpoints: readonly VerifiedCheckpoint[]): Promise<FileVerifyReport> {
  const file = basename(path);
  const lines = linesOf(path)[Symbol.asyncIterator]();
  const header = parseHeader((await lines.next()).value as string | undefined, file);
  const covered = checkpoints.filter((c) => c.size <= header.leaves);
  if (covered.length === 0) {
    throw new AuditFailedError(`export ${file} covers ${header.leaves} leaves; no checkpoint is that small (the smallest is of size ${checkpoints[0]?.size ?? 'none'}): nothing to verify it against`);
  }
  const log = `export ${file}`;
  const check = new TreeCheck({ log, records: "the audit worker's records in the export", container: 'the export' }, covered, header.recorded);
  const progress = new Progress(`audit verify ${log}`, header.leaves, 'leaves');
  /** Recorded leaves the stream had no message for, after the records. */
  const missing: Buffer[] = [];
  let lineNo = 1;
  let trailer: { records: number; missing: number } | undefined;

  for (let next = await lines.next(); !next.done; next = await lines.next()) {
    lineNo++;
    const where = `${file} line ${lineNo}`;
    if (trailer) throw new ExportFormatError(`${where}: a line after the trailer`);
    const line = parseLine(next.value, where);
    if (line.kind === 'trailer') {
      trailer = line.trailer;
      continue;
    }
    const index = check.size + missing.length;
    const leaf = line.kind === 'record' ? line.record.leaf : line.missing.leaf;
    if (leaf !== index) {
      throw new AuditFailedError(`${log}: first bad index ${index}: ${where} holds leaf ${leaf} where leaf ${index} belongs (a record removed, inserted or moved)`);
    }
    if (index >= header.leaves) throw new ExportFormatError(`${where}: leaf ${leaf}, but the header says the export covers ${header.leaves} leaves`);
    if (line.kind === 'missing') {
      if (index >= header.recorded) throw new ExportFormatError(`${where}: a missing leaf without a record (the header says ${header.recorded} leaves are recorded)`);
      missing.push(line.missing.recorded);
      continue;
    }
    if (missing.length > 0) throw new ExportFormatError(`${where}: a record after the missing leaves`);
    const { record } = line;
    if ((record.recorded !== undefined) !== index < header.recorded) {
      throw new ExportFormatError(`${where}: leaf ${index} ${record.recorded ? 'carries' : 'lacks'} the worker's record, but the header says leaves 0..${header.recorded - 1} carry one`);
    }
    let hash: Buffer;
    try {
      hash = rawLeafHash(record.subject, record.headers, record.body);
    } catch (err) {
      throw new AuditFailedError(`${log}: first bad index ${index} (stream seq ${record.seq}): its header block cannot be read (${(err as Error).message})`);
    }
    check.add(hash, record.seq, record.recorded);
    progress.add();
  }
  if (!trailer) throw new ExportFormatError(`${file} ends at line ${lineNo} without its trailer: the export is incomplete (cut off, or still being written)`);
  if (trailer.records !== check.size || trailer.missing !== missing.length) {
    throw new ExportFormatError(`${file}: the trailer counts ${trailer.records} records and ${trailer.missing} missing leaves, the file holds ${check.size} and ${missing.length}`);
  }
  if (check.size + missing.length < header.recorded) throw new ExportFormatError(`${file}: the header says ${header.recorded} leaves are recorded, the file holds ${check.size + missing.length}`);

  const report = await check.end((index) => missing[index - check.size]!);
  // A checkpoint between the last record and the header's count failed above; past all of them, the count still binds.
  if (check.size < header.leaves) {
    throw new AuditFailedError(`${log}: the header covers ${header.leaves} leaves, the export holds ${check.size}: first bad index ${check.size} (missing from the export)`);
  }
  const beyond = checkpoints.length - covered.length;
  progress.finish(`${verifiedSummary(report)}${beyond > 0 ? `, ${beyond} newer checkpoints beyond the export not checked` : ''}`, { count: check.size, unit: 'leaves' });
  return { ...report, header, beyond };
}
