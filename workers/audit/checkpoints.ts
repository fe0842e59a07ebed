/**
 * Where a signed checkpoint goes: a file `<dir>/<tree size>.checkpoint`
 * (outside NATS: an auditor can keep or mirror the directory), the checkpoint
 * stream, and Postgres (for `prove`). Each write is idempotent: the same tree
 * size always yields the same note (Ed25519 is deterministic), the file is
 * written atomically, and the stream drops a re-publication within its
 * duplicate window (the message id is origin@size).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { headers } from '@nats-io/transport-node';
import type { Kysely } from 'kysely';
import type { Names } from '../../infra/naming.js';
import type { Nats } from '../../infra/nats/connection.js';
import type { Database } from '../../schema/database.js';
import { recordCheckpoint, type StoredCheckpoint } from './store.js';

const CHECKPOINT_FILE_SUFFIX = '.checkpoint';

export function checkpointFileName(size: number): string {
  return `${size}${CHECKPOINT_FILE_SUFFIX}`;
}

/** The tree size a checkpoint file's name claims, or undefined for any other file. */
export function sizeOfCheckpointFile(name: string): number | undefined {
  const match = /^(\d+)\.checkpoint$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

async function writeCheckpointFile(dir: string, checkpoint: StoredCheckpoint): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, checkpointFileName(checkpoint.size));
  // Write then rename: a reader never sees half a checkpoint.
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, checkpoint.note, { encoding: 'utf8', mode: 0o644 });
  await rename(tmp, path);
  return path;
}

async function publishCheckpoint(nats: Nats, names: Names, origin: string, checkpoint: StoredCheckpoint): Promise<void> {
  const h = headers();
  h.append('content-type', 'text/plain; charset=utf-8');
  h.append('tlog-origin', origin);
  h.append('tlog-size', String(checkpoint.size));
  await nats.js.publish(names.auditCheckpointSubject, Buffer.from(checkpoint.note, 'utf8'), { msgID: `${origin}@${checkpoint.size}`, headers: h });
}

/** File first (the copy outside NATS matters most), then the stream, then Postgres. */
export async function storeCheckpoint(
  deps: { nats: Nats; names: Names; db: Kysely<Database> },
  dir: string,
  origin: string,
  checkpoint: StoredCheckpoint,
): Promise<void> {
  await writeCheckpointFile(dir, checkpoint);
  await publishCheckpoint(deps.nats, deps.names, origin, checkpoint);
  await recordCheckpoint(deps.db, checkpoint);
}
