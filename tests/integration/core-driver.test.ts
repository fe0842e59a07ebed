/**
 * ProcessCoreDriver against the real V2Ray 4.34 binary (/usr/bin/v2ray, the
 * V2RAY_BIN variable overrides). A node core with an empty VLESS inbound gets
 * a user through the gRPC API; a second core acting as the client (SOCKS in,
 * VLESS out) carries curl's requests to a local HTTP server through it. Then
 * the user is removed, and new connections fail while the traffic counters
 * account for what went through.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../infra/logger.js';
import { freePort, LOOPBACK } from '../../infra/stack/ports.js';
import { isAlreadyApplied, isUserExistsError, isUserNotFoundError, type CoreApiError } from '../../workers/agent/core/core-api.js';
import { withLocalApi, type CoreConfig } from '../../workers/agent/core/local-api.js';
import { ProcessCoreDriver, stopAllCores } from '../../workers/agent/core/process-driver.js';
import { eventually } from '../support/isolated.js';
import { curl, Origin } from '../support/proxy-traffic.js';

const V2RAY = process.env['V2RAY_BIN'] ?? '/usr/bin/v2ray';
const log = createLogger(process.env.LOG_LEVEL ?? 'silent', { test: 'core-driver' });
const INBOUND = 'vless-in';

/** The payloads: big enough that protocol overhead (HTTP headers) is small beside them. */
const DOWNLOAD_BYTES = 300_000;
const UPLOAD_BYTES = 120_000;
const HELD_BYTES = 50_000;
/** Request and response headers of the three requests, with room to spare. */
const OVERHEAD_BYTES = 4_096;

/** A node configuration: one VLESS inbound without TLS and no users yet, freedom out. */
function nodeConfig(vlessPort: number): CoreConfig {
  return {
    log: { loglevel: 'warning' },
    inbounds: [{ tag: INBOUND, listen: LOOPBACK, port: vlessPort, protocol: 'vless', settings: { clients: [], decryption: 'none' } }],
    outbounds: [{ tag: 'direct', protocol: 'freedom' }],
  };
}

/** A client core: SOCKS on socksPort, everything out through VLESS to the node as `userId`. */
function clientConfig(socksPort: number, nodePort: number, userId: string): CoreConfig {
  return {
    log: { loglevel: 'warning' },
    inbounds: [{ tag: 'socks-in', listen: LOOPBACK, port: socksPort, protocol: 'socks', settings: { auth: 'noauth', udp: false } }],
    outbounds: [
      {
        tag: 'to-node',
        protocol: 'vless',
        settings: { vnext: [{ address: LOOPBACK, port: nodePort, users: [{ id: userId, encryption: 'none', level: 0 }] }] },
      },
    ],
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('ProcessCoreDriver with V2Ray 4.34', () => {
  let dir: string;
  const drivers: ProcessCoreDriver[] = [];

  /** A driver for a core of the test's own, stopped after each test. */
  async function driver(): Promise<{ core: ProcessCoreDriver; apiPort: number }> {
    const apiPort = await freePort();
    const core = new ProcessCoreDriver({ flavour: 'v2ray', binary: V2RAY, apiPort, logger: log, stopGraceMs: 2_000 });
    drivers.push(core);
    return { core, apiPort };
  }

  async function writeConfig(name: string, config: unknown): Promise<string> {
    const file = join(dir, `${name}.json`);
    await writeFile(file, JSON.stringify(config, null, 2));
    return file;
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rg-core-'));
  });

  afterEach(async () => {
    await Promise.all(drivers.splice(0).map((core) => core.stop()));
  });

  afterAll(async () => {
    await stopAllCores();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  describe('test()', () => {
    it('accepts a valid configuration', async () => {
      const { core, apiPort } = await driver();
      const file = await writeConfig('valid', withLocalApi(nodeConfig(await freePort()), apiPort));
      expect(await core.test(file)).toBeNull();
    });

    it('returns the core’s own words for a missing TLS certificate, without banner or noise', async () => {
      const { core, apiPort } = await driver();
      const config = nodeConfig(await freePort());
      const missing = join(dir, 'missing-cert.pem');
      (config.inbounds as Array<Record<string, unknown>>)[0]!['streamSettings'] = {
        security: 'tls',
        tlsSettings: { certificates: [{ certificateFile: missing, keyFile: join(dir, 'missing-key.pem') }] },
      };
      const error = await core.test(await writeConfig('missing-cert', withLocalApi(config, apiPort)));
      expect(error).toContain('failed to parse certificate');
      expect(error).toContain(`open ${missing}: no such file or directory`);
      expect(error).not.toContain('V2Ray 4.34');
      expect(error).not.toContain('anti-censorship');
      expect(error).not.toContain('Reading config');
    });

    it('names an unknown protocol', async () => {
      const { core, apiPort } = await driver();
      const config = nodeConfig(await freePort());
      (config.inbounds as Array<Record<string, unknown>>)[0]!['protocol'] = 'vlesss';
      const error = await core.test(await writeConfig('unknown-protocol', withLocalApi(config, apiPort)));
      expect(error).toContain('unknown config id: vlesss');
    });

    it('refuses REALITY and an XTLS Vision flow, which V2Ray would accept and serve without', async () => {
      const { core, apiPort } = await driver();
      const reality = nodeConfig(await freePort());
      (reality.inbounds as Array<Record<string, unknown>>)[0]!['streamSettings'] = {
        network: 'tcp',
        security: 'reality',
        realitySettings: { show: false, dest: 'www.example.com:443', xver: 0, serverNames: ['www.example.com'], privateKey: 'SC1RS6EJYjhOAmMXZB5aAAJ3nDruyZ1ZJdKGyqOZ3l0', shortIds: [''] },
      };
      expect(await core.test(await writeConfig('reality', withLocalApi(reality, apiPort)))).toBe(`inbound ${INBOUND}: V2Ray has no REALITY (it would serve plain VLESS); run the agent with --core xray`);
      const vision = nodeConfig(await freePort());
      (vision.inbounds as Array<{ settings: { clients: unknown[] } }>)[0]!.settings.clients = [{ id: randomUUID(), email: 'u1', level: 0, flow: 'xtls-rprx-vision' }];
      expect(await core.test(await writeConfig('vision', withLocalApi(vision, apiPort)))).toContain(`inbound ${INBOUND}: V2Ray has no xtls-rprx-vision flow`);
    });

    it('keeps the panic line of unreadable JSON but not the goroutine dump', async () => {
      const { core } = await driver();
      const file = join(dir, 'truncated.json');
      await writeFile(file, '{"inbounds": [');
      const error = await core.test(file);
      expect(error).toMatch(/panic: .*unexpected EOF/);
      expect(error).not.toContain('goroutine');
      expect(error!.length).toBeLessThan(2_048);
    });
  });

  describe('lifecycle', () => {
    it('fails start() with the core’s error when it cannot listen, and leaves nothing running', async () => {
      const { core, apiPort } = await driver();
      let exits = 0;
      core.onExit = () => exits++;
      const taken = net.createServer();
      await new Promise<void>((resolve) => taken.listen(0, LOOPBACK, resolve));
      try {
        const port = (taken.address() as net.AddressInfo).port;
        const file = await writeConfig('port-taken', withLocalApi(nodeConfig(port), apiPort));
        await expect(core.start(file)).rejects.toThrow(/address already in use/);
        expect(core.pid).toBeUndefined();
        // start() reported it; the exit is not also an unexpected one.
        expect(exits).toBe(0);
      } finally {
        taken.close();
      }
    });

    it('restarts on a second start(), stops on stop(), and reports only an unexpected exit', async () => {
      const { core, apiPort } = await driver();
      const exits: Array<[number | null, NodeJS.Signals | null]> = [];
      core.onExit = (code, signal) => exits.push([code, signal]);
      const file = await writeConfig('lifecycle', withLocalApi(nodeConfig(await freePort()), apiPort));

      await core.start(file);
      const first = core.pid!;
      await core.start(file);
      const second = core.pid!;
      expect(second).not.toBe(first);
      expect(isAlive(first)).toBe(false);
      expect(await core.takeUserTraffic()).toEqual(new Map());

      await core.stop();
      expect(isAlive(second)).toBe(false);
      expect(exits).toEqual([]);

      await core.start(file);
      process.kill(core.pid!, 'SIGKILL');
      await eventually(() => exits.length > 0, 5_000);
      expect(exits).toEqual([[null, 'SIGKILL']]);
      expect(core.pid).toBeUndefined();
      await expect(core.addUser(INBOUND, { email: 'x@x', account: { protocol: 'vless', id: randomUUID() } })).rejects.toThrow(/not running/);
    });
  });

  describe('users through the gRPC API', () => {
    it('adds a VLESS user who can proxy, removes them so new connections fail, and counts their traffic', async () => {
      const origin = new Origin();
      const originPort = await origin.listen();
      try {
        const { core: node, apiPort } = await driver();
        const vlessPort = await freePort();
        await node.start(await writeConfig('node', withLocalApi(nodeConfig(vlessPort), apiPort)));

        const userId = randomUUID();
        const email = 'alice@relaygrid.test';
        const { core: client, apiPort: clientApiPort } = await driver();
        const socksPort = await freePort();
        await client.start(await writeConfig('client', withLocalApi(clientConfig(socksPort, vlessPort, userId), clientApiPort)));

        // Before the user exists, the node refuses the client.
        const before = await curl(socksPort, `http://${LOOPBACK}:${originPort}/bytes/${DOWNLOAD_BYTES}`);
        expect(before.code).not.toBe(0);
        expect(before.body).toBe(0);

        await node.addUser(INBOUND, { email, account: { protocol: 'vless', id: userId } });

        const download = await curl(socksPort, `http://${LOOPBACK}:${originPort}/bytes/${DOWNLOAD_BYTES}`);
        expect(download).toMatchObject({ code: 0, body: DOWNLOAD_BYTES });
        const payload = join(dir, 'upload.bin');
        await writeFile(payload, randomBytes(UPLOAD_BYTES));
        const upload = await curl(socksPort, `http://${LOOPBACK}:${originPort}/upload`, ['--data-binary', `@${payload}`]);
        expect(upload.code).toBe(0);
        expect(origin.received).toBe(UPLOAD_BYTES);

        // A connection opened before the removal, its response only half sent.
        const held = curl(socksPort, `http://${LOOPBACK}:${originPort}/held/${HELD_BYTES}`);
        await eventually(() => origin.heldRequests === 1, 5_000);

        await node.removeUser(INBOUND, email);

        const after = await curl(socksPort, `http://${LOOPBACK}:${originPort}/bytes/${DOWNLOAD_BYTES}`);
        expect(after.code).not.toBe(0);
        expect(after.body).toBe(0);

        // RemoveUser only stops new connections: the open one finishes.
        origin.release();
        expect(await held).toMatchObject({ code: 0, body: HELD_BYTES });

        const traffic = await node.takeUserTraffic();
        const alice = traffic.get(email);
        expect(alice).toBeDefined();
        // Payload bytes as the node relays them: bodies plus HTTP headers, no VLESS framing.
        expect(alice!.uplink).toBeGreaterThanOrEqual(BigInt(origin.received));
        expect(alice!.uplink).toBeLessThan(BigInt(origin.received + OVERHEAD_BYTES));
        expect(alice!.downlink).toBeGreaterThanOrEqual(BigInt(origin.sent));
        expect(alice!.downlink).toBeLessThan(BigInt(origin.sent + OVERHEAD_BYTES));
        expect([...traffic.keys()]).toEqual([email]);

        // Taken means reset: right after, there is nothing new.
        expect(await node.takeUserTraffic()).toEqual(new Map());
      } finally {
        await origin.close();
      }
    });

    it('tells an already-applied add or remove apart from real failures', async () => {
      const { core, apiPort } = await driver();
      await core.start(await writeConfig('idempotency', withLocalApi(nodeConfig(await freePort()), apiPort)));
      const user = { email: 'bob@relaygrid.test', account: { protocol: 'vless' as const, id: randomUUID() } };

      await core.addUser(INBOUND, user);
      const again = await core.addUser(INBOUND, user).catch((e: unknown) => e);
      expect(isUserExistsError(again)).toBe(true);
      expect(isAlreadyApplied(again)).toBe(true);
      expect((again as CoreApiError).coreMessage).toContain('User bob@relaygrid.test already exists.');
      // The core compares emails case-insensitively.
      const upper = await core.addUser(INBOUND, { ...user, email: 'BOB@relaygrid.test' }).catch((e: unknown) => e);
      expect(isUserExistsError(upper)).toBe(true);

      await core.removeUser(INBOUND, user.email);
      const removedAgain = await core.removeUser(INBOUND, user.email).catch((e: unknown) => e);
      expect(isUserNotFoundError(removedAgain)).toBe(true);
      expect(isAlreadyApplied(removedAgain)).toBe(true);
      expect((removedAgain as CoreApiError).coreMessage).toContain('User bob@relaygrid.test not found.');

      const noInbound = await core.addUser('no-such-inbound', user).catch((e: unknown) => e);
      expect((noInbound as CoreApiError).kind).toBe('inbound-not-found');
      expect(isAlreadyApplied(noInbound)).toBe(false);

      const badId = await core.addUser(INBOUND, { email: 'carol@relaygrid.test', account: { protocol: 'vless', id: 'not-a-uuid' } }).catch((e: unknown) => e);
      expect((badId as CoreApiError).kind).toBe('core');
      expect((badId as CoreApiError).coreMessage).toContain('invalid UUID: not-a-uuid');

      // V2Ray panics (and dies) when a VLESS inbound is handed a Trojan account: refused before sending.
      const pid = core.pid;
      const mismatch = await core.addUser(INBOUND, { email: 'dave@relaygrid.test', account: { protocol: 'trojan', password: 'pw' } }).catch((e: unknown) => e);
      expect((mismatch as CoreApiError).kind).toBe('account-mismatch');
      expect(core.pid).toBe(pid);
      await core.addUser(INBOUND, user);
    });
  });
});
