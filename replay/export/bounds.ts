/** `--from`/`--to` to stream sequences (replay/range.ts), plus the stream's own subjects. */
import type { Nats } from '../../infra/nats/connection.js';
import { resolveRange, streamInfo, type Bound, type SeqRange } from '../range.js';

export interface ExportRange extends SeqRange {
  /** The stream's own subjects (empty for a stream that only sources others, like the audit stream). */
  subjects: string[];
}

export async function resolveExportRange(nats: Nats, stream: string, from?: Bound, to?: Bound): Promise<ExportRange> {
  const info = await streamInfo(nats, stream);
  return { ...(await resolveRange(nats, stream, from, to)), subjects: info.config.subjects ?? [] };
}
