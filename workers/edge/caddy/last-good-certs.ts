/**
 * Copies of the certificate files each site was last applied with, so the
 * last good version of a site keeps its certificate when a new one fails to
 * load (its files are usually replaced in place by the next delivery, so the
 * original paths cannot be trusted to still hold what Caddy accepted).
 * Written via a temporary file and a rename; keys stay 0600.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CertificateFiles } from './render.js';

type Files = { certPath: string; keyPath: string };

export class LastGoodCertificates {
  private readonly sites = new Map<string, Files>();

  constructor(private readonly dir: string) {}

  private files(siteId: string): Files {
    const base = path.join(this.dir, encodeURIComponent(siteId));
    return { certPath: `${base}.crt`, keyPath: `${base}.key` };
  }

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    this.sites.clear();
    const names = new Set(await readdir(this.dir));
    for (const name of names) {
      if (!name.endsWith('.crt') || !names.has(`${name.slice(0, -'.crt'.length)}.key`)) continue;
      const siteId = decodeURIComponent(name.slice(0, -'.crt'.length));
      this.sites.set(siteId, this.files(siteId));
    }
  }

  get(siteId: string): Files | undefined {
    return this.sites.get(siteId);
  }

  all(): CertificateFiles {
    return new Map(this.sites);
  }

  /** Keeps a copy of `source`'s files as the site's last good certificate (no-op when `source` is that copy). */
  async set(siteId: string, source: Files): Promise<void> {
    const target = this.files(siteId);
    if (source.certPath === target.certPath) return;
    const [cert, key] = await Promise.all([readFile(source.certPath), readFile(source.keyPath)]);
    await writeFile(`${target.keyPath}.tmp`, key, { mode: 0o600 });
    await writeFile(`${target.certPath}.tmp`, cert);
    await rename(`${target.keyPath}.tmp`, target.keyPath);
    await rename(`${target.certPath}.tmp`, target.certPath);
    this.sites.set(siteId, target);
  }

  async delete(siteId: string): Promise<void> {
    if (!this.sites.delete(siteId)) return;
    const files = this.files(siteId);
    await Promise.all([rm(files.certPath, { force: true }), rm(files.keyPath, { force: true })]);
  }
}
