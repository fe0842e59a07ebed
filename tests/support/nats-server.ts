/** A nats-server of a test's own, on a free loopback port, from a config file; stopped and removed afterwards. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../infra/stack/ports.js';
import { eventually } from './isolated.js';

export const NATS_SERVER = process.env['NATS_SERVER_BIN'] ?? '/usr/sbin/nats-server';

export interface OwnNatsServer {
  port: number;
  dir: string;
  /** Rewrites the configuration and has the server reload it (SIGHUP), as an operator would after `relaygrid nats-config`. */
  reload(render: (port: number, storeDir: string) => string): Promise<void>;
  stop(): Promise<void>;
}

/** Starts nats-server with the config `render(port, storeDir)` returns, and waits until it answers. */
export async function startNatsServer(render: (port: number, storeDir: string) => string): Promise<OwnNatsServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rg-nats-'));
  const file = join(dir, 'server.conf');
  writeFileSync(file, render(port, join(dir, 'js')));
  const output: string[] = [];
  const proc: ChildProcess = spawn(NATS_SERVER, ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  try {
    await eventually(() => {
      if (proc.exitCode !== null) throw new Error(`nats-server exited: ${output.join('')}`);
      return output.join('').includes('Server is ready');
    }, 10_000);
  } catch (err) {
    proc.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    port,
    dir,
    reload: async (next) => {
      const reloads = output.join('').split('Reloaded').length;
      writeFileSync(file, next(port, join(dir, 'js')));
      proc.kill('SIGHUP');
      await eventually(() => output.join('').split('Reloaded').length > reloads, 10_000);
    },
    stop: async () => {
      proc.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
