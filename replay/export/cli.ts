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
  let from = 0;
  const result = await exportRange(rt, opts, {
    // The bar follows stream positions (done/total messages of the range); the summary counts events.
    onRange: (range) => {
      from = range.from;
      progress = new Progress(`export ${range.stream} ${range.from}..${range.to}`, Math.max(0, range.to - range.from + 1), 'messages');
    },
    onProgress: (seq) => progress?.set(seq - from + 1),
  });
  const kept = opts.types.length > 0 ? `${result.exported.toLocaleString('en')} of type ${opts.types.join(', ')}, ` : '';
  // onRange always ran before exportRange returned.
  progress!.finish(`${kept}${describeFiles(result.files)}`, { count: result.scanned, unit: 'events' });
}
