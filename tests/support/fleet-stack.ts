/**
 * The server side of the fleet for integration tests: a sandbox, a scratch
 * directory, every projector and the fleet worker, and the API when asked;
 * `close()` stops them in reverse order and removes both.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApi, type RunningApi } from '../../infra/roles/api.js';
import { startFleetWorker, type FleetWorkerOptions, type RunningFleetWorker } from '../../infra/roles/fleet.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { LOOPBACK } from '../../infra/stack/ports.js';
import { isolated, type Isolated } from './isolated.js';

export interface FleetStack {
  env: Isolated;
  dir: string;
  projectors: RunningProjectors;
  worker: RunningFleetWorker;
  close(): Promise<void>;
}

export type FleetStackWithApi = FleetStack & { api: RunningApi };

export async function fleetStack(opts: FleetWorkerOptions & { api: true }): Promise<FleetStackWithApi>;
export async function fleetStack(opts?: FleetWorkerOptions): Promise<FleetStack>;
export async function fleetStack(opts: FleetWorkerOptions & { api?: boolean } = {}): Promise<FleetStack & { api?: RunningApi }> {
  const env = await isolated();
  const dir = await mkdtemp(join(tmpdir(), 'rg-fleet-'));
  const projectors = startProjectors(env.rt);
  const worker = await startFleetWorker(env.rt, opts);
  const api = opts.api ? await startApi(env.rt, { host: LOOPBACK }) : undefined;
  return {
    env,
    dir,
    projectors,
    worker,
    ...(api ? { api } : {}),
    close: async () => {
      await api?.close();
      await worker.close();
      await projectors.close();
      await env.cleanup();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
