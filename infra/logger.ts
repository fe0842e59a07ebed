import { pino, type Logger } from 'pino';

export type { Logger };

/** One structured logger per process; roles take a child with their own `role` field. */
export function createLogger(level: string, base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...base } });
}
