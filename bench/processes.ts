/**
 * Benches that need several processes (clients beside a server, agents
 * beside the fleet): a forked child that answers requests over IPC, the
 * child's side of it, percentiles and per-process CPU from /proc. No heavy
 * imports here, so any bench's child can load it.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface Reply {
  seq: number;
  ok: boolean;
  result?: unknown;
  error?: string;
}

/** A forked child answering requests (see `serveRequests`); answers come back in any order, matched by sequence. */
export class Child {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (err: Error) => void }>();
  private exited: Promise<void>;
  private readonly proc: ChildProcess;

  constructor(script: string, args: readonly string[] = [], opts: { env?: NodeJS.ProcessEnv; execArgv?: string[] } = {}) {
    this.proc = fork(fileURLToPath(new URL(script, import.meta.url)), [...args], { env: opts.env ?? process.env, execArgv: opts.execArgv ?? [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.proc.on('message', (m: Reply) => {
      const w = this.waiting.get(m.seq);
      if (!w) return;
      this.waiting.delete(m.seq);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(m.error));
    });
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        for (const w of this.waiting.values()) w.reject(new Error(`${script} exited (${code ?? signal}) while a request was open`));
        this.waiting.clear();
        resolve();
      });
    });
  }

  get pid(): number {
    return this.proc.pid ?? 0;
  }

  request<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const seq = ++this.seq;
    return new Promise<T>((resolve, reject) => {
      this.waiting.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ seq, op, args });
    });
  }

  async close(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGTERM');
    await this.exited;
  }
}

/** In a child: answers each `{seq, op, args}` from the parent with `handlers[op](args)`; exits when the parent goes away. */
export function serveRequests(handlers: Record<string, (args: Record<string, unknown>) => unknown>, onParentGone: () => Promise<void> = () => Promise.resolve()): void {
  process.on('message', (m: { seq: number; op: string; args: Record<string, unknown> }) => {
    const handler = handlers[m.op];
    void (async () => {
      try {
        if (!handler) throw new Error(`unknown request ${m.op}`);
        process.send?.({ seq: m.seq, ok: true, result: await handler(m.args) });
      } catch (err) {
        process.send?.({ seq: m.seq, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
      }
    })();
  });
  // A parent that died or was interrupted must not leave agents heart-beating into a deleted namespace.
  const leave = () => void onParentGone().finally(() => process.exit(0));
  process.once('disconnect', leave);
  process.once('SIGTERM', leave);
  process.once('SIGINT', () => undefined); // the parent's SIGINT handler cleans up and then disconnects us
}

export interface Summary {
  count: number;
  p50: number;
  p99: number;
  max: number;
  min: number;
}

/** The value at rank p (nearest rank below) of sorted values; NaN when there are none. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

/** Percentiles (nearest rank below) of a set of values. */
export function summary(values: readonly number[]): Summary {
  const s = Float64Array.from(values).sort();
  return { count: s.length, p50: percentile(s, 0.5), p99: percentile(s, 0.99), max: s[s.length - 1] ?? NaN, min: s[0] ?? NaN };
}

/** CPU seconds (user + system) from a /proc stat file (a process's or a thread's; USER_HZ 100); NaN once it is gone. */
export function cpuOfStat(path: string): number {
  try {
    const stat = readFileSync(path, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

/** CPU seconds (user + system) a process has used so far; 0 once it is gone. */
export function cpuOfPid(pid: number): number {
  return cpuOfStat(`/proc/${pid}/stat`) || 0;
}
