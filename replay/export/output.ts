/**
 * The `--out` path: checked before any event is read, written under a
 * temporary sibling name, and renamed into place only when the export is
 * complete, so a file or directory at `--out` is always a whole export.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { once, type EventEmitter } from 'node:events';
import { ReplayArgumentError } from '../range.js';

const REASONS: Record<string, string> = {
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a part of the path is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  EISDIR: 'it is a directory',
  ENOSPC: 'no space left on the device',
};

/** An I/O error on `--out` as one line naming the flag and the path. */
export function outError(out: string, err: unknown): Error {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return err as Error;
  return new ReplayArgumentError(`--out: cannot write "${out}": ${REASONS[code] ?? (err as Error).message}`);
}

async function statOf(path: string) {
  try {
    return await stat(path);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw err;
  }
}

export interface PendingOutput {
  /** Where to write meanwhile. */
  partial: string;
  /** Moves the partial output to `--out`. */
  commit(): Promise<void>;
  /** Removes the partial output. */
  discard(): Promise<void>;
}

function pendingName(out: string): string {
  return `${out.replace(/\/+$/, '')}.partial-${process.pid}`;
}

/** A directory for Avro files: `out` must not exist or be an empty directory. */
export async function pendingDirectory(out: string): Promise<PendingOutput> {
  const partial = pendingName(out);
  try {
    const existing = await statOf(out);
    if (existing && !existing.isDirectory()) throw new ReplayArgumentError(`--out: "${out}" is a file; avro exports write a directory of .avro files`);
    if (existing && (await readdir(out)).length > 0) throw new ReplayArgumentError(`--out: directory "${out}" is not empty; name a new or empty directory`);
    await mkdir(partial);
  } catch (err) {
    throw err instanceof ReplayArgumentError ? err : outError(out, err);
  }
  return {
    partial,
    async commit() {
      // rename(2) replaces an empty directory on Linux, but not everywhere: remove it first.
      if (await statOf(out)) await rmdir(out);
      await rename(partial, out);
    },
    discard: () => rm(partial, { recursive: true, force: true }),
  };
}

/** A file for NDJSON: an existing file at `out` is replaced when the export completes. */
export async function pendingFile(out: string): Promise<PendingOutput> {
  const partial = pendingName(out);
  try {
    if ((await statOf(out))?.isDirectory()) throw new ReplayArgumentError(`--out: "${out}" is a directory; ndjson exports write one file`);
    await writeFile(partial, '');
  } catch (err) {
    throw err instanceof ReplayArgumentError ? err : outError(out, err);
  }
  return { partial, commit: () => rename(partial, out), discard: () => rm(partial, { force: true }) };
}

/**
 * Resolves when `writable` drains or `file` closes (a failed file never drains
 * what feeds it), and removes both listeners either way: thousands of waits
 * must not pile listeners up on the streams.
 */
export async function drainOrClose(writable: EventEmitter, file: EventEmitter): Promise<void> {
  const done = new AbortController();
  try {
    // An 'error' on either rejects a wait: the callers keep stream errors themselves and look after the wait.
    await Promise.race([once(writable, 'drain', { signal: done.signal }), once(file, 'close', { signal: done.signal })]).catch(() => undefined);
  } finally {
    done.abort();
  }
}

/** A write stream whose first error is kept, to be thrown by the next write or the close. */
export class FileWriter {
  private readonly stream: WriteStream;
  private failure: Error | undefined;

  constructor(
    readonly path: string,
    private readonly out: string,
  ) {
    // Room for several chunks in flight: with the default 16 KiB every chunk waited for the disk, and the export idled.
    this.stream = createWriteStream(path, { highWaterMark: 8 * 1024 * 1024 });
    this.stream.on('error', (err) => (this.failure ??= outError(out, err)));
  }

  /** Writes a chunk; resolves on drain when the stream's buffer is full. */
  write(chunk: string | Buffer): void | Promise<void> {
    if (this.failure) throw this.failure;
    if (!this.stream.write(chunk)) return this.drained();
  }

  private async drained(): Promise<void> {
    await drainOrClose(this.stream, this.stream);
    if (this.failure) throw this.failure;
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  get raw(): WriteStream {
    return this.stream;
  }

  /** Ends the stream (unless a pipe into it ends it: `end = false`) and waits until the file is closed. */
  async close(end = true): Promise<void> {
    if (!this.stream.closed) {
      if (end) this.stream.end();
      await once(this.stream, 'close').catch(() => undefined);
    }
    if (this.failure) throw this.failure;
  }

  destroy(): void {
    this.stream.destroy();
  }
}
