/**
 * Which sites an `nginx -t` failure is about. nginx names the file and line of
 * a directive it rejects (`… in /…/releases/7/sites/<id>.conf:12`); errors of
 * the merge phase (a certificate that does not load) name no file but the
 * certificate's path, which belongs to one site.
 */
import path from 'node:path';

export function failingSites(error: string, releaseDir: string, certificates: ReadonlyMap<string, { certPath: string; keyPath: string }>, siteIds: ReadonlySet<string>): string[] {
  const found = new Set<string>();
  const sitesDir = path.join(releaseDir, 'sites');
  for (const match of error.matchAll(/ in (\S+):\d+\s*$/gm)) {
    const file = match[1] ?? '';
    if (path.dirname(file) !== sitesDir || !file.endsWith('.conf')) continue;
    const siteId = path.basename(file, '.conf');
    if (siteIds.has(siteId)) found.add(siteId);
  }
  for (const [siteId, files] of certificates) {
    if (siteIds.has(siteId) && (error.includes(files.certPath) || error.includes(files.keyPath))) found.add(siteId);
  }
  return [...found];
}
