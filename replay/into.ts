import type { Runtime } from '../infra/runtime.js';

/** Placeholder while this command is being built. */
export function runInto(_rt: Runtime, _args: string[]): Promise<void> {
  return Promise.reject(new Error('not built yet'));
}
