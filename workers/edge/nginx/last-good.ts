/**
 * The last version of each site that nginx accepted on this node, in memory
 * and one JSON file per site (written via a temporary file and a rename), so
 * a site rejected after an agent restart still keeps serving what it served.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SiteSpec } from '../../../producers/edge/model.js';

export class LastGoodSites {
  private readonly sites = new Map<string, SiteSpec>();

  constructor(private readonly dir: string) {}

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.sites.clear();
    for (const name of await readdir(this.dir)) {
      if (!name.endsWith('.json')) continue;
      const site = JSON.parse(await readFile(path.join(this.dir, name), 'utf8')) as SiteSpec;
      this.sites.set(site.siteId, site);
    }
  }

  get(siteId: string): SiteSpec | undefined {
    return this.sites.get(siteId);
  }

  all(): SiteSpec[] {
    return [...this.sites.values()];
  }

  private file(siteId: string): string {
    // Site ids are [A-Za-z0-9_-] (escape.ts siteIdOf) once rendered; encode anyway, a file name is no place to trust them.
    return path.join(this.dir, `${encodeURIComponent(siteId)}.json`);
  }

  async set(site: SiteSpec): Promise<void> {
    const previous = this.sites.get(site.siteId);
    if (previous !== undefined && JSON.stringify(previous) === JSON.stringify(site)) return;
    const file = this.file(site.siteId);
    await writeFile(`${file}.tmp`, JSON.stringify(site));
    await rename(`${file}.tmp`, file);
    this.sites.set(site.siteId, site);
  }

  async delete(siteId: string): Promise<void> {
    if (!this.sites.delete(siteId)) return;
    await rm(this.file(siteId), { force: true });
  }
}
