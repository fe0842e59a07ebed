/** nats-server processes of a test's own, on free loopback ports, from config files; stopped and removed afterwards. */
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

/** One running nats-server process and what it has printed. */
interface Running {
  proc: ChildProcess;
  output: string[];
  exited: Promise<void>;
}

/** Runs nats-server on `file` and waits until it says it is ready (`Server is ready`). */
async function launch(file: string, readyWithinMs = 10_000): Promise<Running> {
  const output: string[] = [];
  const proc: ChildProcess = spawn(NATS_SERVER, ['-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()));
  proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()));
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  try {
    await eventually(() => {
      if (proc.exitCode !== null) throw new Error(`nats-server exited: ${output.join('')}`);
      return output.join('').includes('Server is ready');
    }, readyWithinMs);
  } catch (err) {
    proc.kill('SIGKILL');
    await exited;
    throw err;
  }
  return { proc, output, exited };
}

/** Starts nats-server with the config `render(port, storeDir)` returns, and waits until it answers. */
export async function startNatsServer(render: (port: number, storeDir: string) => string): Promise<OwnNatsServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'rg-nats-'));
  const file = join(dir, 'server.conf');
  writeFileSync(file, render(port, join(dir, 'js')));
  let running: Running;
  try {
    running = await launch(file);
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const { proc, output, exited } = running;
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

/** Where one member of a test cluster listens and keeps its data. */
export interface ClusterSlot {
  name: string;
  port: number;
  clusterPort: number;
  storeDir: string;
  /** host:port of every member's cluster listener, this one's included. */
  routes: string[];
}

export interface ClusterNode extends ClusterSlot {
  url: string;
  running(): boolean;
  /** SIGKILL: no shutdown, nothing flushed beyond what the kernel already has. */
  kill(): Promise<void>;
  /** Starts the member again on the same ports and store (after `kill`). */
  restart(): Promise<void>;
  /** What the current (or last) process printed. */
  output(): string;
}

export interface OwnNatsCluster {
  nodes: ClusterNode[];
  /** Client URL of every member, comma-separated (as NATS_URL takes them), with `credentials` (`user:password@`) if given. */
  urls(credentials?: string): string;
  stop(): Promise<void>;
}

/**
 * Starts `size` nats-servers, each with the config `render(slot)` returns, as
 * one cluster on loopback ports; waits until each is ready. Members can be
 * killed and restarted on their own store, as a crashed machine comes back.
 */
export async function startNatsCluster(size: number, render: (slot: ClusterSlot) => string): Promise<OwnNatsCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'rg-nats-cluster-'));
  const ports: { port: number; clusterPort: number }[] = [];
  // freePort hands out what is free now; taking them all first keeps one member from drawing another's.
  const taken = new Set<number>();
  const draw = async () => {
    for (;;) {
      const p = await freePort();
      if (!taken.has(p)) {
        taken.add(p);
        return p;
      }
    }
  };
  for (let i = 0; i < size; i++) ports.push({ port: await draw(), clusterPort: await draw() });
  const routes = ports.map((p) => `127.0.0.1:${p.clusterPort}`);
  const nodes = ports.map((p, i): ClusterNode => {
    const slot: ClusterSlot = { name: `n${i + 1}`, ...p, storeDir: join(dir, `n${i + 1}`), routes };
    const file = join(dir, `n${i + 1}.conf`);
    writeFileSync(file, render(slot));
    let current: Running | undefined;
    let last: string[] = [];
    const alive = () => current !== undefined && current.proc.exitCode === null && current.proc.signalCode === null;
    return {
      ...slot,
      url: `nats://127.0.0.1:${p.port}`,
      running: alive,
      kill: async () => {
        if (!current) return;
        current.proc.kill('SIGKILL');
        await current.exited;
        last = current.output;
        current = undefined;
      },
      restart: async () => {
        if (alive()) throw new Error(`${slot.name} is running`);
        current = await launch(file, 30_000);
      },
      output: () => (current?.output ?? last).join(''),
    };
  });
  const stop = async () => {
    for (const node of nodes) await node.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // In parallel: a member waits for its routes' peers before JetStream says it is ready.
    await Promise.all(nodes.map((n) => n.restart()));
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    nodes,
    urls: (credentials) => nodes.map((n) => (credentials ? n.url.replace('nats://', `nats://${credentials}@`) : n.url)).join(','),
    stop,
  };
}
