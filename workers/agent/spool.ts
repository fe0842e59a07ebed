/**
 * The agent's usage spool: a tick is written here before it is sent and
 * removed only once the fleet acknowledged it, so a tick survives a network
 * outage and an agent restart. One JSON line per tick; removal rewrites the
 * file through a rename, so a crash leaves either the old or the new file.
 * A tick sent but not yet removed when the agent dies is sent again: its tick
 * id makes the second copy a no-op (JetStream's duplicate window, then the
 * usage projection's tick ledger).
 */
import { appendFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { TickWire } from '../fleet/agent-protocol.js';

export class UsageSpool {
  private ticks: TickWire[] = [];

  constructor(private readonly path: string) {}

  async load(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true });
    const text = await readFile(this.path, 'utf8').catch((err: NodeJS.ErrnoException) => (err.code === 'ENOENT' ? '' : Promise.reject(err)));
    // A line cut short by a crash mid-append is dropped: it was never sent, and its bytes are not known.
    this.ticks = text.split('\n').flatMap((line) => {
      try {
        return line ? [JSON.parse(line) as TickWire] : [];
      } catch {
        return [];
      }
    });
  }

  async add(tick: TickWire): Promise<void> {
    await appendFile(this.path, `${JSON.stringify(tick)}\n`, { flush: true });
    this.ticks.push(tick);
  }

  pending(): readonly TickWire[] {
    return this.ticks;
  }

  /** Removes the ticks the fleet took, with one rewrite however many: after an outage the spool may hold hundreds. */
  async remove(tickIds: ReadonlySet<string>): Promise<void> {
    if (tickIds.size === 0) return;
    this.ticks = this.ticks.filter((t) => !tickIds.has(t.tickId));
    const tmp = `${this.path}.tmp`;
    await writeFile(tmp, this.ticks.map((t) => `${JSON.stringify(t)}\n`).join(''), { flush: true });
    await rename(tmp, this.path);
  }
}
