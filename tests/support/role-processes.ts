/**
 * Relaygrid roles as child processes (`relaygrid api`, `projector`,
 * `audit-worker`, …) on ports of their own, waited for until /ready answers
 * 200, and stopped with SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Config } from '../../infra/config.js';
import { CLI, sandboxEnv } from './cli.js';
import { eventually } from './isolated.js';

export interface RoleProcess {
  command: string;
  portVariable: string;
  port: number;
  proc: ChildProcess;
  output: string[];
  url: string;
}

export class RoleProcesses {
  readonly roles: RoleProcess[] = [];

  constructor(private readonly config: Config) {}

  /** Starts `relaygrid <command>` serving its HTTP (API) or ops port on `port` (`portVariable`). */
  spawn(command: string, portVariable: string, port: number, extraEnv: Record<string, string> = {}): RoleProcess {
    const proc = spawn(process.execPath, [CLI, command], { env: sandboxEnv(this.config, { [portVariable]: String(port), ...extraEnv }), stdio: ['ignore', 'pipe', 'pipe'] });
    const output: string[] = [];
    proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
    proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
    const role = { command, portVariable, port, proc, output, url: `http://127.0.0.1:${port}` };
    this.roles.push(role);
    return role;
  }

  role(command: string): RoleProcess {
    const found = this.roles.find((r) => r.command === command);
    if (!found) throw new Error(`no ${command} started`);
    return found;
  }

  /** Until every role started answers /ready with 200; a role that exits or never does fails with its output. */
  ready(timeoutMs = 20_000): Promise<unknown> {
    return Promise.all(
      this.roles.map((r) =>
        eventually(async () => {
          if (r.proc.exitCode !== null) throw new Error(`${r.command} exited with ${r.proc.exitCode}: ${r.output.join('')}`);
          return (await fetch(`${r.url}/ready`)).status === 200;
        }, timeoutMs).catch((err: unknown) => {
          throw new Error(`${r.command} on ${r.portVariable}=${r.port} never became ready: ${(err as Error).message}\n${r.output.join('').slice(-2000)}`);
        }),
      ),
    );
  }

  /** SIGTERM to every role, resolved once all have exited. */
  stop(): Promise<unknown> {
    return Promise.all(
      this.roles.map(
        (r) =>
          new Promise<void>((resolve) => {
            if (r.proc.exitCode !== null || r.proc.signalCode !== null) return resolve();
            r.proc.once('exit', () => resolve());
            r.proc.kill('SIGTERM');
          }),
      ),
    );
  }
}
