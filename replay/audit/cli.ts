import type { Config } from '../../infra/config.js';

/** Placeholder while this command is being built. */
export function runAudit(_config: Config, _args: string[]): Promise<void> {
  return Promise.reject(new Error('not built yet'));
}
