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

export async function runFleetCli(rt: Runtime, args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { reason: { type: 'string' }, address: { type: 'string' }, region: { type: 'string' }, country: { type: 'string' }, city: { type: 'string' }, labels: { type: 'string' }, roles: { type: 'string' } },
  });
  const [command, target, rolloutId] = positionals;
  if (!command) {
    console.log(FLEET_USAGE);
    return;
  }
  const watcher = new CheckpointWatcher(rt.config.databaseUrl, rt.db);
  const fleet = openFleet(rt, watcher);
  const actor = { actor: `operator:${userInfo().username}` };
  const need = (what: string, value: string | undefined) => {
    if (!value) throw new FleetCommandError(`${what}: required\n\n${FLEET_USAGE}`);
    return value;
  };
  try {
    switch (command) {
      case 'import': {
        const nodes = parseNodesFile(await readFile(need('<nodes.yaml>', target), 'utf8'));
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
      case 'add': {
        const list = (v: string | undefined) => (v === undefined ? undefined : v.split(',').filter(Boolean));
        const node: NodeInput = { nodeId: need('<node>', target), address: need('--address', values.address), region: values.region, country: values.country, city: values.city, labels: list(values.labels), roles: list(values.roles) };
        await fleet.nodes.register(node, 'cli', actor);
        console.log(`${target}: registered; next: relaygrid fleet enroll-token ${target}`);
        return;
      }
      case 'nodes':
        for (const n of await fleet.views.nodes()) {
          console.log(`${n.nodeId}\t${n.address}\t${n.health}${n.drained ? ' (drained)' : ''}${n.retired ? ' (retired)' : ''}\tapplied ${n.appliedVersion ?? '-'}${n.lastError ? `\tlast error: ${n.lastError}` : ''}`);
        }
        return;
      case 'enroll-token': {
        const { token, expiresAt } = await fleet.nodes.issueEnrollmentToken(need('<node>', target), actor);
        console.log(`${token}\n(valid once, until ${expiresAt.toISOString()}: relaygrid agent --node ${target} --enroll <token> --api <url>)`);
        return;
      }
      case 'drain':
      case 'undrain':
      case 'retire': {
        const type = command === 'drain' ? 'Drain' : command === 'undrain' ? 'Undrain' : 'Retire';
        await fleet.nodes.operate(type, need('<node>', target), actor);
        console.log(`${target}: ${command === 'retire' ? 'retired' : command + 'ed'}`);
        return;
      }
      case 'rollout': {
        if (target === 'plan') {
          const planned = await fleet.rollouts.plan({ reason: values.reason ?? 'planned from the CLI' }, actor);
          console.log(`rollout ${planned.rolloutId}: ${planned.targets} nodes, canary first`);
          return;
        }
        const id = need('<rollout id>', rolloutId);
        if (target === 'status') console.log(JSON.stringify(await fleet.views.rollout(id), null, 2));
        else if (target === 'pause' || target === 'resume' || target === 'abort' || target === 'rollback') {
          await fleet.rollouts.operate(target === 'rollback' ? 'RollBack' : target === 'pause' ? 'Pause' : target === 'resume' ? 'Resume' : 'Abort', id, actor);
          console.log(`rollout ${id}: ${target} recorded`);
        } else throw new FleetCommandError(`rollout: unknown action "${String(target)}"\n\n${FLEET_USAGE}`);
        return;
      }
      default:
        throw new FleetCommandError(`fleet: unknown command "${command}"\n\n${FLEET_USAGE}`);
    }
  } catch (err) {
    if (err instanceof DomainError) throw new FleetCommandError(err.message);
    throw err;
  } finally {
    await watcher.close();
  }
}
