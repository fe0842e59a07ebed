/**
 * Reads what nginx logged since the last read: the traffic log (one JSON line
 * per site request, ./traffic-format.ts) and, for WAF blocks, the error log,
 * where ModSecurity writes `Access denied with code 403 … [unique_id
 * "<siteId>:<request id>"]` for every request it stops (the transaction id
 * site.ts sets; `detect` only ever writes warnings). Logs are rotated here:
 * past `maxBytes` a log is renamed to `<log>.1` and nginx told to reopen
 * (SIGUSR1); the old file is read to its end before the new one.
 */
import { open, rename, stat, type FileHandle } from 'node:fs/promises';
import type { TrafficLine } from './traffic-format.js';

/** One request as the edge logged it. */
export interface RequestRecord {
  siteId: string;
  status: number;
  sentBytes: bigint;
  receivedBytes: bigint;
  /** Seconds spent on upstreams (every attempt); null when none was asked (a cache hit, a block, a WAF refusal). */
  upstreamSeconds: number | null;
  /** An upstream attempt failed: no connection, a timeout (nginx writes 502/504), or a 5xx answer. */
  upstreamError: boolean;
  /** $upstream_cache_status; null for a site without a cache. */
  cache: string | null;
}

export interface EdgeTrafficRead {
  requests: RequestRecord[];
  /** Requests the WAF refused, per site. */
  wafBlocks: Map<string, number>;
}

const CHUNK = 1 << 20;

/** The lines appended to a file since the last read; follows a rename (rotation) by reading the old file to its end first. */
export class LogTail {
  private handle: FileHandle | null = null;
  private ino = -1;
  private position = 0;
  private partial = '';

  constructor(readonly path: string) {}

  /** Starts at the current end: what was logged before this process is not counted again. */
  async skipExisting(): Promise<void> {
    const info = await stat(this.path).catch(() => null);
    if (!info) return;
    this.handle = await open(this.path, 'r');
    this.ino = info.ino;
    this.position = info.size;
  }

  async lines(): Promise<string[]> {
    const lines: string[] = [];
    const info = await stat(this.path).catch(() => null);
    if (this.handle && (!info || info.ino !== this.ino)) {
      // Rotated: the old file first, to its end.
      lines.push(...(await this.drain()));
      await this.handle.close();
      this.handle = null;
      this.partial = '';
    }
    if (!info) return lines;
    if (!this.handle) {
      this.handle = await open(this.path, 'r');
      this.ino = info.ino;
      this.position = 0;
    } else if (info.size < this.position) {
      // Truncated in place.
      this.position = 0;
      this.partial = '';
    }
    lines.push(...(await this.drain()));
    return lines;
  }

  /** Renames the log aside when it passed `maxBytes`; `reopen` makes nginx write a fresh one. */
  async rotate(maxBytes: number, reopen: () => void): Promise<void> {
    const info = await stat(this.path).catch(() => null);
    if (!info || info.size <= maxBytes) return;
    await rename(this.path, `${this.path}.1`);
    reopen();
  }

  async close(): Promise<void> {
    await this.handle?.close();
    this.handle = null;
  }

  private async drain(): Promise<string[]> {
    const handle = this.handle!;
    const buffer = Buffer.alloc(CHUNK);
    let text = this.partial;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, CHUNK, this.position);
      if (bytesRead === 0) break;
      this.position += bytesRead;
      text += buffer.toString('utf8', 0, bytesRead);
    }
    const lines = text.split('\n');
    // The last piece is a line nginx has not finished writing (or empty).
    this.partial = lines.pop() ?? '';
    return lines.filter((line) => line.length > 0);
  }
}

const SITE_ID = /^[A-Za-z0-9_-]{1,64}$/;
const DIGITS = /^\d{1,19}$/;

/** $upstream_status / $upstream_response_time: `a, b : c` (a comma per server tried, a colon per upstream group); `-` or empty for none. */
function attempts(value: string): string[] {
  return value.split(/[,:]/).map((part) => part.trim()).filter((part) => part !== '' && part !== '-');
}

/** A traffic-log line, or null for one that is not ours or is cut (never thrown: a bad line must not stop the counting). */
export function parseTrafficLine(line: string): RequestRecord | null {
  let raw: Partial<TrafficLine>;
  try {
    raw = JSON.parse(line) as Partial<TrafficLine>;
  } catch {
    return null;
  }
  const { site, status, sent, received } = raw;
  if (typeof site !== 'string' || !SITE_ID.test(site) || typeof status !== 'string' || !/^\d{3}$/.test(status)) return null;
  const statuses = attempts(raw.upstreamStatus ?? '');
  const times = attempts(raw.upstreamTime ?? '').map(Number).filter((n) => Number.isFinite(n));
  return {
    siteId: site,
    status: Number(status),
    sentBytes: typeof sent === 'string' && DIGITS.test(sent) ? BigInt(sent) : 0n,
    receivedBytes: typeof received === 'string' && DIGITS.test(received) ? BigInt(received) : 0n,
    upstreamSeconds: times.length > 0 ? times.reduce((a, b) => a + b, 0) : null,
    upstreamError: statuses.some((s) => !/^\d{3}$/.test(s) || Number(s) >= 500),
    cache: raw.cache ? raw.cache : null,
  };
}

const WAF_BLOCK = /ModSecurity: Access denied with code \d{3}\b.*\[unique_id "([A-Za-z0-9_-]{1,64}):/;

/** The site of an error-log line that records a WAF refusal; null for any other line. */
export function wafBlockedSite(line: string): string | null {
  return WAF_BLOCK.exec(line)?.[1] ?? null;
}

/** Both logs of one nginx edge node. */
export class NginxTrafficLogs {
  private readonly traffic: LogTail;
  private readonly errors: LogTail;

  constructor(trafficLog: string, errorLog: string, private readonly maxBytes = 64 * 1024 * 1024) {
    this.traffic = new LogTail(trafficLog);
    this.errors = new LogTail(errorLog);
  }

  async skipExisting(): Promise<void> {
    await this.traffic.skipExisting();
    await this.errors.skipExisting();
  }

  async read(reopen: () => void): Promise<EdgeTrafficRead> {
    const requests = (await this.traffic.lines()).flatMap((line) => parseTrafficLine(line) ?? []);
    const wafBlocks = new Map<string, number>();
    for (const line of await this.errors.lines()) {
      const site = wafBlockedSite(line);
      if (site !== null) wafBlocks.set(site, (wafBlocks.get(site) ?? 0) + 1);
    }
    let rotated = false;
    const once = () => {
      if (!rotated) reopen();
      rotated = true;
    };
    await this.traffic.rotate(this.maxBytes, once);
    await this.errors.rotate(this.maxBytes, once);
    return { requests, wafBlocks };
  }

  async close(): Promise<void> {
    await this.traffic.close();
    await this.errors.close();
  }
}
