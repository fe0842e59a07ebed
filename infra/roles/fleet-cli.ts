/**
 * `relaygrid fleet …`: the fleet for operators at a shell. Acts as
 * `operator:<unix user>`.
 *
 * nodes.yaml (the discovery file) lists nodes; importing it again creates the
 * new ones, updates the changed ones and records nothing for the rest:
 *
 *   nodes:
 *     - name: fra-1
 *       address: 203.0.113.7
 *       region: eu-central
 *       country: DE
 *       city: Frankfurt
 *       labels: [eu, reality]
 *       roles: [proxy]
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { DomainError } from '../../producers/decider.js';
import type { NodeInput } from '../../producers/fleet/nodes.js';
import { CheckpointWatcher } from '../../projectors/runtime/checkpoint-watcher.js';
import { openFleet } from './fleet.js';
import type { Runtime } from '../runtime.js';
import { CliError } from '../cli/cli-error.js';
import { printTable } from '../cli/table.js';

export const FLEET_USAGE = `usage: relaygrid fleet <command>

  import <nodes.yaml>                      create or update the nodes the file lists
  add <node> --address A [--region R] [--country CC] [--city C] [--labels a,b] [--roles proxy]
                                           register one node
  nodes                                    list nodes with health and versions
  enroll-token <node>                      issue a one-time enrollment token for a node's agent
  drain|undrain|retire <node>
  rollout plan [--reason "…"]              render every node's configuration and roll out what changed
  rollout status|pause|resume|abort|rollback <rollout id>`;

class FleetCommandError extends CliError {}

/** The nodes of a discovery file, each checked enough to name the entry and field at fault. */
export function parseNodesFile(text: string): NodeInput[] {
  const doc = parseYaml(text) as { nodes?: unknown } | null;
  if (!doc || !Array.isArray(doc.nodes)) throw new FleetCommandError('nodes.yaml: expected a top-level "nodes:" list');
  return doc.nodes.map((entry: unknown, i) => {
    if (!entry || typeof entry !== 'object') throw new FleetCommandError(`nodes[${i}]: must be a mapping`);
    const e = entry as Record<string, unknown>;
    return { nodeId: e['name'] as string, address: e['address'] as string, region: e['region'] as string, country: e['country'] as string, city: e['city'] as string, labels: e['labels'] as string[], roles: e['roles'] as string[] };
  });
}

type RolloutAction = 'Pause' | 'Resume' | 'Abort' | 'RollBack';
const ROLLOUT_ACTIONS: Record<string, RolloutAction> = { pause: 'Pause', resume: 'Resume', abort: 'Abort', rollback: 'RollBack' };
const NODE_OPERATIONS = { drain: 'Drain', undrain: 'Undrain', retire: 'Retire' } as const;
const COMMANDS = ['import', 'add', 'nodes', 'enroll-token', 'drain', 'undrain', 'retire', 'rollout'];

/** A `fleet` command whose arguments (and nodes.yaml) have been checked: what runs once connected. */
export type FleetCommand =
  | { command: 'usage' }
  | { command: 'import'; nodes: NodeInput[] }
  | { command: 'add'; node: NodeInput }
  | { command: 'nodes' }
  | { command: 'enroll-token'; node: string }
  | { command: 'drain' | 'undrain' | 'retire'; node: string }
  | { command: 'rollout plan'; reason: string }
  | { command: 'rollout status'; rolloutId: string }
  | { command: 'rollout action'; action: RolloutAction; verb: string; rolloutId: string };

/** Checks the arguments, and reads and checks nodes.yaml, before anything connects. */
export async function parseFleetArgs(args: string[]): Promise<FleetCommand> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { reason: { type: 'string' }, address: { type: 'string' }, region: { type: 'string' }, country: { type: 'string' }, city: { type: 'string' }, labels: { type: 'string' }, roles: { type: 'string' } },
  });
  const [command, target, rolloutId] = positionals;
  const need = (what: string, value: string | undefined) => {
    if (!value) throw new FleetCommandError(`${what}: required\n\n${FLEET_USAGE}`);
    return value;
  };
  switch (command) {
    case undefined:
      return { command: 'usage' };
    case 'import': {
      const file = need('<nodes.yaml>', target);
      const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
        throw new FleetCommandError(`<nodes.yaml>: cannot read ${file} (${err.code ?? err.message})`);
      });
      return { command, nodes: parseNodesFile(text) };
    }
    case 'add': {
      const list = (v: string | undefined) => (v === undefined ? undefined : v.split(',').filter(Boolean));
      return { command, node: { nodeId: need('<node>', target), address: need('--address', values.address), region: values.region, country: values.country, city: values.city, labels: list(values.labels), roles: list(values.roles) } };
    }
    case 'nodes':
      return { command };
    case 'enroll-token':
    case 'drain':
    case 'undrain':
    case 'retire':
      return { command, node: need('<node>', target) };
    case 'rollout': {
      if (target === 'plan') return { command: 'rollout plan', reason: values.reason ?? 'planned from the CLI' };
      if (target === 'status') return { command: 'rollout status', rolloutId: need('<rollout id>', rolloutId) };
      const action = target === undefined ? undefined : ROLLOUT_ACTIONS[target];
      if (action === undefined) throw new FleetCommandError(`rollout: unknown action "${String(target)}" (one of plan, status, ${Object.keys(ROLLOUT_ACTIONS).join(', ')})\n\n${FLEET_USAGE}`);
      return { command: 'rollout action', action, verb: target!, rolloutId: need('<rollout id>', rolloutId) };
    }
    default:
      throw new FleetCommandError(`fleet: unknown command "${command}" (one of ${COMMANDS.join(', ')})\n\n${FLEET_USAGE}`);
  }
}

const dash = (value: string | null | undefined) => (value === null || value === undefined || value === '' ? '-' : value);

/** Parses and runs in one go, for callers that already hold a runtime (tests). */
export async function runFleetCli(rt: Runtime, args: string[]): Promise<void> {
  const cmd = await parseFleetArgs(args);
  if (cmd.command === 'usage') console.log(FLEET_USAGE);
  else await runFleetCommand(rt, cmd);
}

export async function runFleetCommand(rt: Runtime, cmd: Exclude<FleetCommand, { command: 'usage' }>): Promise<void> {
  const watcher = new CheckpointWatcher(rt.config.databaseUrl, rt.db);
  const fleet = openFleet(rt, watcher);
  const actor = { actor: `operator:${userInfo().username}` };
  try {
    switch (cmd.command) {
      case 'import': {
        const { nodes } = cmd;
        let changed = 0;
        for (const [i, node] of nodes.entries()) {
          try {
            const result = await fleet.nodes.describe(node, 'discovery', actor);
            if (result.changed) changed++;
            console.log(`[${i + 1}/${nodes.length}] ${node.nodeId}: ${result.changed ? 'created or updated' : 'unchanged'}`);
          } catch (err) {
            if (err instanceof DomainError) throw new FleetCommandError(`nodes[${i}] (${String(node.nodeId)}): ${err.message}`);
            throw err;
          }
        }
        console.log(`${nodes.length} nodes in the file, ${changed} created or updated`);
        return;
      }
      case 'add':
        await fleet.nodes.register(cmd.node, 'cli', actor);
        console.log(`${cmd.node.nodeId}: registered; next: npx relaygrid fleet enroll-token ${cmd.node.nodeId}`);
        return;
      case 'nodes':
        // TEMPLATE is the applied template: the identifier `rollout status` lists per target.
        printTable(
          ['NODE', 'ADDRESS', 'HEALTH', 'STATE', 'TEMPLATE', 'VERSION', 'LAST ERROR'],
          (await fleet.views.nodes()).map((n) => [
            n.nodeId,
            n.address,
            n.health,
            n.retired ? 'retired' : n.drained ? 'drained' : 'active',
            dash(n.appliedTemplate),
            dash(n.appliedVersion),
            dash(n.lastError),
          ]),
        );
        return;
      case 'enroll-token': {
        const { token, expiresAt } = await fleet.nodes.issueEnrollmentToken(cmd.node, actor);
        // The whole first start of the agent, --state-dir included: without it the agent refuses to start.
        console.log(`${token}\n(valid once, until ${expiresAt.toISOString()}; on the node: npx relaygrid agent --node ${cmd.node} --state-dir /var/lib/relaygrid-agent --enroll ${token} --api <API URL>)`);
        return;
      }
      case 'drain':
      case 'undrain':
      case 'retire':
        await fleet.nodes.operate(NODE_OPERATIONS[cmd.command], cmd.node, actor);
        console.log(`${cmd.node}: ${cmd.command === 'retire' ? 'retired' : cmd.command + 'ed'}`);
        return;
      case 'rollout plan': {
        const planned = await fleet.rollouts.plan({ reason: cmd.reason }, actor);
        console.log(`rollout ${planned.rolloutId}: ${planned.targets} nodes, canary first`);
        return;
      }
      case 'rollout status':
        console.log(JSON.stringify(await fleet.views.rollout(cmd.rolloutId), null, 2));
        return;
      case 'rollout action':
        await fleet.rollouts.operate(cmd.action, cmd.rolloutId, actor);
        console.log(`rollout ${cmd.rolloutId}: ${cmd.verb} recorded`);
        return;
    }
  } catch (err) {
    if (err instanceof DomainError) throw new FleetCommandError(err.message);
    throw err;
  } finally {
    await watcher.close();
  }
}
