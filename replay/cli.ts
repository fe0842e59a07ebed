/**
 * `relaygrid replay <command>`: the analysts' and auditors' tool. Commands
 * that read the log open a runtime; `audit verify-proof` works offline.
 * Bad arguments end with one line naming the flag and exit code 2.
 */
import type { Config } from '../infra/config.js';
import { withRuntime as withRole, type Runtime } from '../infra/runtime.js';
import { AUDIT_USAGE, runAudit } from './audit/cli.js';
import { runExport } from './export/cli.js';
import { EXPORT_USAGE } from './export/args.js';
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
  audit verify [--file F] | export --out F | prove <event id> | verify-proof <proof> --checkpoint F --key F | keygen <name> --out F`;

const COMMANDS = ['schemas', 'export', 'rebuild', 'state', 'into', 'audit'];

/** What `relaygrid replay … --help` prints: the subcommand's own usage where it has one. */
export function replayHelp(args: string[]): string {
  const command = args.find((arg) => !arg.startsWith('-'));
  if (command === 'export') return EXPORT_USAGE;
  if (command === 'audit') return AUDIT_USAGE;
  return REPLAY_USAGE;
}

export async function runReplay(config: Config, args: string[]): Promise<void> {
  const [command, ...rest] = args;
  const withRuntime = (fn: (rt: Runtime) => Promise<void>) => withRole(config, 'replay', fn);
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
    case undefined:
      console.log(REPLAY_USAGE);
      return;
    default:
      throw new ReplayArgumentError(`unknown replay command "${command}" (one of ${COMMANDS.join(', ')}; \`relaygrid replay\` shows the usage)`);
  }
}
