/**
 * `relaygrid replay export …`: the flags, a progress line on a terminal, and
 * one summary line at the end (events, seconds, events/s, files written).
 */
import type { Runtime } from '../../infra/runtime.js';
import { Progress } from '../progress.js';
import { parseExportArgs } from './args.js';
import { exportRange } from './export.js';
import type { WrittenFile } from './sink.js';

function describeFiles(files: WrittenFile[]): string {
  if (files.length === 0) return 'no file written (no event in the range)';
  const list = files.map((f) => `${f.path} (${f.events.toLocaleString('en')})`).join(', ');
  return `${files.length} file${files.length === 1 ? '' : 's'} written: ${list}`;
}

export async function runExport(rt: Runtime, args: string[]): Promise<void> {
  const opts = parseExportArgs(args);
  let progress: Progress | undefined;
  const result = await exportRange(rt, opts, {
    // The total is the range's messages: a commit holds several events, and --subject skips some, so it is an estimate.
    onRange: (range) => (progress = new Progress(`export ${range.stream} ${range.from}..${range.to}`, Math.max(0, range.to - range.from + 1))),
    onProgress: (n) => progress?.add(n),
  });
  const kept = opts.types.length > 0 ? `${result.exported.toLocaleString('en')} of type ${opts.types.join(', ')}, ` : '';
  const summary = `${kept}${describeFiles(result.files)}`;
  if (progress) progress.finish(summary);
  else process.stdout.write(`export: ${summary}\n`);
}
