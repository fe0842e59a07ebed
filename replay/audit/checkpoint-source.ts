/**
 * The checkpoints an audit is checked against, from the checkpoint stream or
 * from a directory of `<size>.checkpoint` files (the copy kept outside NATS),
 * each opened with the verifier key: signature, origin (the key's name), body.
 * The result is one checkpoint per tree size, ascending; two different roots
 * for one size is a fork and fails the audit.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Runtime } from '../../infra/runtime.js';
import { sizeOfCheckpointFile } from '../../workers/audit/checkpoints.js';
import { ReplayArgumentError } from '../range.js';
import { AuditFailedError, CheckpointKeyError } from './errors.js';
import { NoteError, openCheckpoint, type Checkpoint, type Verifier } from './note.js';
import { readStream } from '../range.js';

export interface RawCheckpoint {
  /** Where it came from, for messages: `file 12.checkpoint`, `stream RG_AUDIT_CHECKPOINTS seq 3`. */
  source: string;
  text: string;
  /** The size a file name claims. */
  claimedSize?: number;
}

export interface VerifiedCheckpoint extends Checkpoint {
  source: string;
  text: string;
}


export async function checkpointsFromDir(dir: string): Promise<RawCheckpoint[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (err) {
    throw new ReplayArgumentError(`--checkpoints: cannot read directory ${dir} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const out: RawCheckpoint[] = [];
  for (const name of names) {
    const claimedSize = sizeOfCheckpointFile(name);
    if (claimedSize === undefined) continue;
    out.push({ source: `file ${name}`, text: await readFile(join(dir, name), 'utf8'), claimedSize });
  }
  return out;
}

export async function checkpointsFromStream(rt: Runtime): Promise<RawCheckpoint[]> {
  const stream = rt.names.auditCheckpointStream;
  const out: RawCheckpoint[] = [];
  try {
    await readStream(rt, stream, (msg) => {
      out.push({ source: `stream ${stream} seq ${msg.seq}`, text: Buffer.from(msg.data).toString('utf8') });
    });
  } catch (err) {
    if (!(err instanceof ReplayArgumentError)) throw err;
    throw new ReplayArgumentError(`--checkpoints: there is no checkpoint stream ${stream} (has the audit worker run?); pass --checkpoints <dir>`);
  }
  return out;
}

/** One checkpoint opened with the verifier key; a bad signature, origin or body is a CheckpointKeyError (exit 3). */
export function openWithKey(text: string, verifier: Verifier, source: string): Checkpoint {
  try {
    return openCheckpoint(text, verifier, verifier.name);
  } catch (err) {
    if (err instanceof NoteError) throw new CheckpointKeyError(`checkpoint ${source}: ${err.message}`);
    throw err;
  }
}

/** Opens every checkpoint; any bad one fails the audit. */
export function verifyCheckpoints(raw: readonly RawCheckpoint[], verifier: Verifier): VerifiedCheckpoint[] {
  const bySize = new Map<number, VerifiedCheckpoint>();
  for (const r of raw) {
    const c = openWithKey(r.text, verifier, r.source);
    if (r.claimedSize !== undefined && r.claimedSize !== c.size) throw new AuditFailedError(`checkpoint ${r.source} is of tree size ${c.size}, not ${r.claimedSize}`);
    const seen = bySize.get(c.size);
    if (seen && !seen.root.equals(c.root)) {
      throw new AuditFailedError(`checkpoints ${seen.source} and ${r.source} sign different roots for tree size ${c.size}: the log forked`);
    }
    if (!seen) bySize.set(c.size, { ...c, source: r.source, text: r.text });
  }
  return [...bySize.values()].sort((a, b) => a.size - b.size);
}
