/**
 * `relaygrid replay <command>`: the analysts' and auditors' tool. Commands
 * that read the log open a runtime; `audit verify-proof` works offline.
 * Bad arguments end with one line naming the flag and exit code 2.
 */
import type { Config } from '../infra/config.js';
import { openRuntime, type Runtime } from '../infra/runtime.js';
import { runAudit } from './audit/cli.js';
import { runExport } from './export/cli.js';
import { runInto } from './into.js';
import { runRebuild } from './rebuild.js';
import { ReplayArgumentError } from './range.js';
import { runSchemas } from './schemas.js';
import { runState } from './state.js';

export const REPLAY_USAGE = `usage: relaygrid replay <command>

  schemas                                   every event type and version with its fingerprint
  export --stream S [--from seq|time] [--to seq|time] [--type T…] [--subject F]
         --format avro|ndjson --out FILE    events of a range, for analysis
  rebuild <projector>                       blue/green rebuild of a read model from the start of the log
  state <aggregate subject> [--at seq|time] an aggregate as it was, with the events that made it
  into --database-url URL [--from …] [--to …]   every projector over a range into another database
  audit verify | prove <event id> | verify-proof <proof> --checkpoint F --key F`;

export async function runReplay(config: Config, args: string[]): Promise<void> {
  const [command, ...rest] = args;
  const withRuntime = async (fn: (rt: Runtime) => Promise<void>) => {
    const rt = await openRuntime(config, 'replay');
    try {
      await fn(rt);
    } finally {
      await rt.close();
    }
  };
  switch (command) {
    case 'schemas':
      return withRuntime((rt) => runSchemas(rt, rest));
    case 'export':
      return withRuntime((rt) => runExport(rt, rest));
    case 'rebuild':
      return withRuntime((rt) => runRebuild(rt, rest));
    case 'state':
      return withRuntime((rt) => runState(rt, rest));
    case 'into':
      return withRuntime((rt) => runInto(rt, rest));
    case 'audit':
      return runAudit(config, rest);
    default:
      throw new ReplayArgumentError(command ? `unknown replay command "${command}"\n\n${REPLAY_USAGE}` : REPLAY_USAGE);
  }
}
