/**
 * How a foreground process that started services stops on a signal. The
 * first SIGINT/SIGTERM starts the shutdown; later ones are absorbed, because
 * a Ctrl-C under `npm start` arrives twice (from the terminal and forwarded by
 * npm) and a second one must not cut the drain short. A supervisor waits
 * about 10 s before it SIGKILLs (docker stop, systemd): if the drain has not
 * finished by deadlineMs, the process exits anyway, and its 'exit' handlers
 * still signal the services it started (infra/stack/processes.ts).
 */
import type { Logger } from '../logger.js';

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export interface Shutdown {
  /** Resolves with the first signal's name. */
  signalled: Promise<string>;
  /** Whether a signal has arrived. */
  requested(): boolean;
  /** Removes the listeners and the deadline once shutdown is done. */
  release(): void;
}

export function shutdownOnSignal(log: Logger, deadlineMs: number): Shutdown {
  let first: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let resolveSignalled: (signal: string) => void = () => undefined;
  const signalled = new Promise<string>((resolve) => {
    resolveSignalled = resolve;
  });
  const onSignal = (signal: NodeJS.Signals) => {
    if (first !== undefined) {
      log.info({ signal }, 'already stopping');
      return;
    }
    first = signal;
    timer = setTimeout(() => {
      log.error({ signal, deadlineMs }, 'did not stop in time; exiting now');
      process.exit(1);
    }, deadlineMs);
    timer.unref();
    resolveSignalled(signal);
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  return {
    signalled,
    requested: () => first !== undefined,
    release: () => {
      clearTimeout(timer);
      for (const signal of SIGNALS) process.off(signal, onSignal);
    },
  };
}
