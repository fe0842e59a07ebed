/**
 * Rendered trees on disk: each apply writes a fresh releases/<n>, nginx -t
 * checks it there, and `current` is switched to it by renaming a new symlink
 * over the old one (rename is atomic, so a reload reads one whole tree or the
 * other). A few old releases stay for a look after the fact.
 */
import { link, mkdir, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EdgeLayout } from './layout.js';

const KEEP_RELEASES = 3;

export async function nextReleaseId(layout: EdgeLayout): Promise<number> {
  const ids = (await readdir(layout.releases)).map(Number).filter(Number.isSafeInteger);
  return ids.length === 0 ? 1 : Math.max(...ids) + 1;
}

/** Files written at once. */
const WRITE_PARALLELISM = 32;

/** A tree written to disk, kept so the next release can link the files it shares. */
export interface WrittenTree {
  dir: string;
  files: ReadonlyMap<string, string>;
}

/**
 * Writes `files` into a fresh directory (anything already there is removed
 * first). A file whose contents equal the same file of `previous` is a hard
 * link to it: creating a file with data costs ~0.65 ms on this VM's ext4 and a
 * link ~0.02 ms, so a 1,000-site tree with one site changed is written in tens
 * of milliseconds instead of most of a second (bench:edge). Releases are never
 * modified after they are written (only removed), so sharing inodes is safe.
 */
export async function writeTree(dir: string, files: ReadonlyMap<string, string>, previous?: WrittenTree): Promise<WrittenTree> {
  await rm(dir, { recursive: true, force: true });
  const entries = [...files];
  for (const folder of new Set(entries.map(([relative]) => path.dirname(path.join(dir, relative))))) await mkdir(folder, { recursive: true });
  const put = async (relative: string, contents: string): Promise<void> => {
    const file = path.join(dir, relative);
    if (previous !== undefined && previous.dir !== dir && previous.files.get(relative) === contents) {
      try {
        return await link(path.join(previous.dir, relative), file);
      } catch {
        // The previous release is gone or on another device: write it instead.
      }
    }
    await writeFile(file, contents);
  };
  let next = 0;
  const writer = async (): Promise<void> => {
    for (let i = next++; i < entries.length; i = next++) {
      const entry = entries[i];
      if (entry !== undefined) await put(...entry);
    }
  };
  await Promise.all(Array.from({ length: Math.min(WRITE_PARALLELISM, entries.length) }, writer));
  return { dir, files };
}

/** Points `current` at release `id` atomically. */
export async function switchCurrent(layout: EdgeLayout, id: number): Promise<void> {
  const temp = `${layout.current}.${process.pid}.tmp`;
  await rm(temp, { force: true });
  await symlink(path.relative(path.dirname(layout.current), layout.release(id)), temp);
  await rename(temp, layout.current);
}

/** The release `current` points at, if any. */
export async function currentReleaseId(layout: EdgeLayout): Promise<number | null> {
  try {
    const id = Number(path.basename(await readlink(layout.current)));
    return Number.isSafeInteger(id) ? id : null;
  } catch {
    return null;
  }
}

/** Removes releases older than the last few, never the current one. */
export async function pruneReleases(layout: EdgeLayout): Promise<void> {
  const current = await currentReleaseId(layout);
  const ids = (await readdir(layout.releases)).map(Number).filter(Number.isSafeInteger).sort((a, b) => b - a);
  for (const id of ids.slice(KEEP_RELEASES)) if (id !== current) await rm(layout.release(id), { recursive: true, force: true });
}
