/**
 * Usage ticks are never lost and never counted twice: a tick the agent cannot
 * send waits in its spool file, survives an agent restart, and is sent once
 * the fleet answers; a tick sent again (the agent died between the fleet's
 * answer and clearing its spool) is stored once, inside JetStream's duplicate
 * window and after it (the usage projection's tick ledger).
 */
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { uuidv7 } from '../../contracts/ids.js';
import { createLogger } from '../../infra/logger.js';
import { startFleetWorker, type RunningFleetWorker } from '../../infra/roles/fleet.js';
import { startProjectors, type RunningProjectors } from '../../infra/roles/projectors.js';
import { NodeAgent } from '../../workers/agent/agent.js';
import { AckCoreDriver } from '../../workers/agent/core/ack-driver.js';
import { eventually, isolated, type Isolated } from '../support/isolated.js';

const log = createLogger(process.env['LOG_LEVEL'] ?? 'silent', { test: 'usage-spool' });
const operator = { actor: 'operator:test' };
const NODE = 'spool-1';

describe('usage ticks through the agent spool', () => {
  let env: Isolated;
  let projectors: RunningProjectors;
  let worker: RunningFleetWorker | undefined;
  let nc: NatsConnection;
  let dir: string;
  const driver = new AckCoreDriver();
  const spoolFile = () => join(dir, NODE, 'usage-spool.ndjson');

  const agent = async () => {
    const a = new NodeAgent({ nc, names: env.rt.names, nodeId: NODE, stateDir: join(dir, NODE), driver, apiPort: 1, log, syncIntervalMs: 60_000, heartbeatIntervalMs: 60_000, usageIntervalMs: 60_000, requestTimeoutMs: 1_000 });
    await a.start();
    return a;
  };
  const usage = async (userId: string) => env.rt.db.selectFrom('usage_user_hourly').select(['uplink', 'downlink']).where('user_id', '=', userId).executeTakeFirst();
  const spooled = async () => (await readFile(spoolFile(), 'utf8').catch(() => '')).split('\n').filter(Boolean);

  beforeAll(async () => {
    env = await isolated();
    dir = await mkdtemp(join(tmpdir(), 'rg-spool-'));
    nc = await connect({ servers: env.config.natsUrl });
    projectors = startProjectors(env.rt);
    worker = await startFleetWorker(env.rt);
    await worker.fleet.nodes.register({ nodeId: NODE, address: '192.0.2.9' }, 'api', operator);
    await worker.fleet.profiles.create({ profileId: 'main', kind: 'vless', port: 443 }, operator);
    await worker.fleet.rollouts.plan({ reason: 'spool test' }, operator);
    // The agent starts after the announcement and syncs only every minute here: its first sync must find the template.
    await eventually(async () => (await env.rt.db.selectFrom('fleet_nodes').select('desired_template').where('id', '=', NODE).executeTakeFirst())?.desired_template);
  }, 30_000);

  afterAll(async () => {
    await worker?.close();
    await projectors?.close();
    await nc?.close();
    await env?.cleanup();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps ticks the fleet cannot take, across a restart, and sends them once it can', async () => {
    let a = await agent();
    await eventually(() => a.appliedTemplate !== null);
    await worker!.close();
    worker = undefined;

    driver.traffic.set('user-1', { uplink: 1_000n, downlink: 2_000n });
    await expect(a.collectUsage()).rejects.toThrow();
    driver.traffic.set('user-1', { uplink: 10n, downlink: 20n });
    await expect(a.collectUsage()).rejects.toThrow();
    expect(await spooled()).toHaveLength(2);
    await a.stop(false);

    worker = await startFleetWorker(env.rt);
    a = await agent();
    await a.collectUsage();
    expect(await spooled()).toEqual([]);
    await eventually(async () => (await usage('user-1'))?.downlink === 2_020);
    expect(await usage('user-1')).toEqual({ uplink: 1_010, downlink: 2_020 });
    await a.stop(false);
  });

  it('counts a tick sent twice once: inside the duplicate window, and after it', async () => {
    const tick = { tickId: uuidv7(), intervalStart: new Date(Date.now() - 10_000).toISOString(), intervalEnd: new Date().toISOString(), users: [{ userId: 'user-2', uplink: '5', downlink: '7' }] };
    // The agent died after the fleet took this tick and before it cleared its spool: it is there again at the next start.
    await writeFile(spoolFile(), `${JSON.stringify(tick)}\n`);
    let a = await agent();
    await a.collectUsage();
    await a.stop(false);
    await writeFile(spoolFile(), `${JSON.stringify(tick)}\n`);
    a = await agent();
    await a.collectUsage();
    await a.stop(false);
    await eventually(async () => (await usage('user-2'))?.downlink === 7);

    // Past the window JetStream stores the resend as a new message; the projection's ledger drops it.
    const store = worker!.fleet.deps.handler.store;
    await store.append(env.rt.names.aggregate('usage', 'node', NODE), [{ type: 'usage.UsageTicked', data: { tickId: tick.tickId, nodeId: NODE, intervalStart: new Date(tick.intervalStart), intervalEnd: new Date(tick.intervalEnd), users: [{ userId: 'user-2', uplink: 5n, downlink: 7n }] } }], {
      expectedSeq: null,
      meta: { source: 'relaygrid/test' },
    });
    const marker = uuidv7();
    const { seq } = await store.append(env.rt.names.aggregate('usage', 'node', NODE), [{ type: 'usage.UsageTicked', data: { tickId: marker, nodeId: NODE, intervalStart: new Date(), intervalEnd: new Date(), users: [{ userId: 'user-3', uplink: 1n, downlink: 1n }] } }], {
      expectedSeq: null,
      meta: { source: 'relaygrid/test' },
    });
    await eventually(async () => ((await env.rt.db.selectFrom('projector_checkpoints').select('seq').where('projector', '=', 'usage').executeTakeFirst())?.seq ?? 0) >= seq);
    expect(await usage('user-2')).toEqual({ uplink: 5, downlink: 7 });
    // Two ticks of the first test; this tick once for its two sends inside the window; its copy past the window; the marker.
    expect((await env.rt.nats.jsm.streams.info(env.rt.names.stream('usage'))).state.messages).toBe(5);
  });
});
