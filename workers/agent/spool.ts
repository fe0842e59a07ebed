/**
 * The agent's spools: a record (a usage tick, a connection report) is written
 * here before it is sent and removed only once the fleet acknowledged it, so
 * it survives a network outage and an agent restart. One JSON line per
 * record; removal rewrites the file through a rename, so a crash leaves
 * either the old or the new file. A record sent but not yet removed when the
 * agent dies is sent again: its id makes the second copy a no-op (JetStream's
 * duplicate window, then the projection's ledger or upsert).
 *
 * The files are 0600: connection reports hold client IPs (personal data)
 * until the fleet, which seals them, has taken them.
 */
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { TickWire } from '../fleet/agent-protocol.js';

const MODE = 0o600;

export class Spool<T> {
  private records: T[] = [];

  constructor(
    private readonly path: string,
    private readonly idOf: (record: T) => string,
  ) {}

  async load(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const text = await readFile(this.path, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '' : Promise.reject(err)));
    // A line cut short by a crash mid-append is dropped: it was never sent.
    this.records = text.split('\n').flatMap((line) => {
      try {
        return line ? [JSON.parse(line) as T] : [];
      } catch {
        return [];
      }
    });
  }

  async add(record: T): Promise<void> {
    await appendFile(this.path, `${JSON.stringify(record)}\n`, { flush: true, mode: MODE });
    this.records.push(record);
  }

  pending(): readonly T[] {
    return this.records;
  }

  /** Removes the records the fleet took, with one rewrite however many: after an outage the spool may hold hundreds. */
  async remove(ids: ReadonlySet<string>): Promise<void> {
    if (ids.size === 0) return;
    this.records = this.records.filter((r) => !ids.has(this.idOf(r)));
    const tmp = `${this.path}.tmp`;
    await writeFile(tmp, this.records.map((r) => `${JSON.stringify(r)}\n`).join(''), { flush: true, mode: MODE });
    await rename(tmp, this.path);
  }
}

/**
 * Sends a spool's records in order, removing those the fleet took; answers how many. A record the
 * fleet refuses as malformed (`refused`) is dropped, or it would block the spool forever; any other
 * failure stops the round, and the rest waits for the next one.
 */
export async function sendSpooled<T>(spool: Spool<T>, idOf: (record: T) => string, send: (record: T) => Promise<unknown>, refused: (err: unknown) => boolean, onDropped: (err: unknown, id: string) => void): Promise<number> {
  const taken = new Set<string>();
  try {
    for (const record of spool.pending()) {
      try {
        await send(record);
      } catch (err) {
        if (!refused(err)) throw err;
        onDropped(err, idOf(record));
      }
      taken.add(idOf(record));
    }
  } finally {
    // Also when a send failed: what went before it is taken, and a crash before this line only resends (ids deduplicate).
    await spool.remove(taken);
  }
  return taken.size;
}

export class UsageSpool extends Spool<TickWire> {
  constructor(path: string) {
    super(path, (t) => t.tickId);
  }
}
