/**
 * Rendered trees on disk: each apply writes a fresh releases/<n>, nginx -t
 * checks it there, and `current` is switched to it by renaming a new symlink
 * over the old one (rename is atomic, so a reload reads one whole tree or the
 * other). A few old releases stay for a look after the fact.
 */
import { mkdir, readdir, readlink, rename, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { EdgeLayout } from './layout.js';

const KEEP_RELEASES = 3;

export async function nextReleaseId(layout: EdgeLayout): Promise<number> {
  const ids = (await readdir(layout.releases)).map(Number).filter(Number.isSafeInteger);
  return ids.length === 0 ? 1 : Math.max(...ids) + 1;
}

/** Writes `files` into a fresh directory (anything already there is removed first). */
export async function writeTree(dir: string, files: ReadonlyMap<string, string>): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  for (const [relative, contents] of files) {
    const file = path.join(dir, relative);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, contents);
  }
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
